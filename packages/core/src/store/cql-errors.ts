/**
 * The driver's errors that mean "the cluster cannot do this now" (too few replicas alive, a
 * replica too slow, no node reachable) rather than "this request is wrong": an operator's client
 * should retry them, so they become OMNI_ERR_STORE_UNAVAILABLE (503 with Retry-After) instead of
 * a 500. Recognized by shape, so that code above the store need not load the driver to ask.
 */
import cassandra from 'cassandra-driver';
import { coreError, type CoreError } from '../errors.ts';

const { errors, types } = cassandra;
const codes = types.responseErrorCodes;

/** Cassandra's CAS_WRITE_UNKNOWN (protocol v5): a lightweight transaction whose outcome is unknown. */
const CAS_WRITE_UNKNOWN = 0x1700;

const RETRIABLE_RESPONSE_CODES: ReadonlyMap<number, string> = new Map([
  [codes.unavailableException, 'too few replicas alive for the consistency level'],
  [codes.overloaded, 'a node is overloaded'],
  [codes.isBootstrapping, 'a node is still joining the cluster'],
  [codes.writeTimeout, 'replicas did not acknowledge a write in time'],
  [codes.readTimeout, 'replicas did not answer a read in time'],
  [CAS_WRITE_UNKNOWN, 'a lightweight transaction could not reach a quorum'],
]);

/** Seconds a client should wait before retrying: a node's restart or a failure detector's verdict takes seconds. */
export const STORE_RETRY_AFTER_SECONDS = 2;

/** The 503 for a driver error that a later retry may not meet, or undefined for any other error. */
export function storeUnavailable(error: unknown): CoreError | undefined {
  const reason = unavailableReason(error);
  if (reason === undefined) return undefined;
  return coreError('OMNI_ERR_STORE_UNAVAILABLE', { reason, seconds: STORE_RETRY_AFTER_SECONDS });
}

function unavailableReason(error: unknown): string | undefined {
  let reason: string | undefined;
  if (error instanceof errors.NoHostAvailableError) {
    // The driver tried every node; what they answered says more than "none would do".
    const inner = Object.values(error.innerErrors ?? {}).map(unavailableReason).find((r) => r !== undefined);
    reason = inner ?? 'no node of the cluster can be reached';
  }
  else if (error instanceof errors.OperationTimedOutError) reason = 'a node did not answer in time';
  else if (error instanceof errors.BusyConnectionError) reason = 'every connection to the cluster is busy';
  // A node that died (or restarted) mid-request: the driver does not retry what is not idempotent.
  else if (error instanceof errors.DriverError && (error as { isSocketError?: boolean }).isSocketError === true) reason = 'the connection to a node closed mid-request';
  else if (error instanceof errors.ResponseError) reason = RETRIABLE_RESPONSE_CODES.get(error.code);
  return reason;
}
