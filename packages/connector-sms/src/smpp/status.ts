/**
 * SMPP 3.4 command_status values this package acts on (§5.1.3), and how a submit_sm_resp
 * status decides a message's fate.
 */
export const CommandStatus = {
  ESME_ROK: 0x00,
  ESME_RINVMSGLEN: 0x01,
  ESME_RINVCMDLEN: 0x02,
  ESME_RINVCMDID: 0x03,
  ESME_RINVBNDSTS: 0x04,
  ESME_RALYBND: 0x05,
  ESME_RSYSERR: 0x08,
  ESME_RINVSRCADR: 0x0a,
  ESME_RINVDSTADR: 0x0b,
  ESME_RBINDFAIL: 0x0d,
  ESME_RINVPASWD: 0x0e,
  ESME_RINVSYSID: 0x0f,
  ESME_RMSGQFUL: 0x14,
  ESME_RINVESMCLASS: 0x43,
  ESME_RSUBMITFAIL: 0x45,
  ESME_RINVDSTTON: 0x50,
  ESME_RINVDSTNPI: 0x51,
  ESME_RINVSYSTYP: 0x53,
  ESME_RTHROTTLED: 0x58,
  ESME_RX_T_APPN: 0x64,
  ESME_RX_P_APPN: 0x65,
  ESME_RINVDCS: 0x104,
} as const;

const NAMES = new Map<number, string>(Object.entries(CommandStatus).map(([name, value]) => [value, name]));

/** "ESME_RTHROTTLED (0x58)", or the bare hex for statuses without a name here. */
export function statusName(status: number): string {
  const hex = `0x${status.toString(16).padStart(2, '0')}`;
  const name = NAMES.get(status);
  return name ? `${name} (${hex})` : hex;
}

/** Bind refusals that no retry can cure: the credentials or the account are wrong. */
export const FATAL_BIND_STATUSES: ReadonlySet<number> = new Set([
  CommandStatus.ESME_RBINDFAIL,
  CommandStatus.ESME_RINVPASWD,
  CommandStatus.ESME_RINVSYSID,
  CommandStatus.ESME_RINVSYSTYP,
]);

export type SubmitFailure = 'throttled' | 'busy' | 'invalid-number' | 'rejected';

/**
 * What a non-zero submit_sm_resp status means for the message. Throttling and a full queue
 * are the SMSC asking us to wait (and to send less at once); a system error, a temporary
 * application error or a lost bind state are transient; an unknown destination is final;
 * anything else is a refusal of this message as it is.
 */
export function classifySubmitStatus(status: number): SubmitFailure {
  switch (status) {
    case CommandStatus.ESME_RTHROTTLED:
    case CommandStatus.ESME_RMSGQFUL:
      return 'throttled';
    case CommandStatus.ESME_RSYSERR:
    case CommandStatus.ESME_RX_T_APPN:
    case CommandStatus.ESME_RINVBNDSTS:
      return 'busy';
    case CommandStatus.ESME_RINVDSTADR:
    case CommandStatus.ESME_RINVDSTTON:
    case CommandStatus.ESME_RINVDSTNPI:
      return 'invalid-number';
    default:
      return 'rejected';
  }
}
