/**
 * The reply classification on error shapes nodemailer produces (lib/smtp-connection
 * `_formatError`) for cases an in-process server cannot easily stage; the common cases run
 * end to end against a real SMTP server in test/email-sink.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { FatalConnectorError } from '@omnibus/sdk';
import { EMAIL_ERROR_CODES, failureOutcome, hardBounces, queueIdOf, sentOutcome, type SmtpError } from './outcome.ts';

const server = { host: 'smtp.example.org', port: 587, user: 'mailer' };
const smtpError = (fields: Partial<SmtpError> & { message: string }): SmtpError => Object.assign(new Error(fields.message), fields);

describe('failureOutcome', () => {
  it('retries temporary authentication failures and fails the connector on refused credentials', () => {
    const refused = failureOutcome(smtpError({ message: 'Invalid login: 535 5.7.8 nope', code: 'EAUTH', responseCode: 535, response: '535 5.7.8 nope' }), server);
    expect(refused).toBeInstanceOf(FatalConnectorError);
    expect((refused as FatalConnectorError).message).toContain('"mailer" at smtp.example.org:587 failed: 535 5.7.8 nope');
    const temporary = failureOutcome(smtpError({ message: 'x', code: 'EAUTH', responseCode: 454, response: '454 4.7.0 try later' }), server);
    expect(temporary).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred } });
  });

  it('retries connection-level failures, even a 5xx greeting', () => {
    for (const error of [
      smtpError({ message: 'Connection timeout', code: 'ETIMEDOUT', command: 'CONN' }),
      smtpError({ message: 'Reached maximum number of retries after connection was closed' }),
      smtpError({ message: 'greeting', code: 'EPROTOCOL', responseCode: 554, response: '554 no service', command: 'CONN' }),
    ]) {
      expect(failureOutcome(error, server)).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.connection } });
    }
  });

  it('fails messages refused by the sender check or unsendable as built', () => {
    const sender = smtpError({ message: 'Mail command failed: 553 sender', code: 'EENVELOPE', responseCode: 553, response: '553 sender', command: 'MAIL FROM' });
    expect(failureOutcome(sender, server)).toMatchObject({ status: 'failed', error: { code: EMAIL_ERROR_CODES.senderRejected } });
    const tooLarge = smtpError({ message: 'Message size larger than allowed 1000', code: 'EMESSAGE', command: 'MAIL FROM' });
    expect(failureOutcome(tooLarge, server)).toMatchObject({ status: 'failed', error: { code: EMAIL_ERROR_CODES.unsendable } });
  });

  it('retries when every recipient was refused and one of them only for now', () => {
    const all = smtpError({
      message: "Can't send mail - all recipients were rejected",
      code: 'EENVELOPE',
      responseCode: 550,
      command: 'RCPT TO',
      rejectedErrors: [
        smtpError({ message: 'r', recipient: 'a@example.org', responseCode: 451, response: '451 later' }),
        smtpError({ message: 'r', recipient: 'b@example.org', responseCode: 550, response: '550 unknown' }),
      ],
    });
    expect(failureOutcome(all, server)).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred } });
  });
});

describe('sentOutcome', () => {
  it("keeps the server's queue id next to the Message-ID", () => {
    expect(queueIdOf('250 2.0.0 Ok: queued as 4B3F21C0A7')).toBe('4B3F21C0A7');
    expect(queueIdOf('250 OK id=1tAbCd-000Xyz-2Q')).toBe('1tAbCd-000Xyz-2Q');
    expect(queueIdOf('250 OK')).toBeUndefined();
    expect(sentOutcome({ messageId: '<m@x.org>', response: '250 2.0.0 Ok: queued as Q1', accepted: ['a@x.org'], rejected: [] })).toEqual({
      status: 'sent',
      providerId: '<m@x.org>',
      details: { messageId: '<m@x.org>', queueId: 'Q1', response: '250 2.0.0 Ok: queued as Q1', accepted: ['a@x.org'] },
    });
  });
});

describe('hard bounces', () => {
  it('are permanent refusals of the address itself (RFC 3463 5.1.1, 5.1.2, 5.1.3, 5.1.6, 5.1.10)', () => {
    const rejected = [
      { address: 'gone@example.org', code: 550, reason: '550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown in local recipient table' },
      { address: 'nomx@example.net', code: 550, reason: '550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup' },
      { address: 'spam@example.org', code: 554, reason: '554 5.7.1 Message rejected as spam' },
      { address: 'full@example.org', code: 452, reason: '452 4.2.2 Mailbox full' },
      { address: 'plain@example.org', code: 550, reason: '550 No such user here' },
    ];
    expect(hardBounces(rejected)).toEqual([
      { channel: 'email', address: 'gone@example.org', reason: 'hard-bounce', code: '550 5.1.1' },
      { channel: 'email', address: 'nomx@example.net', reason: 'hard-bounce', code: '550 5.1.10' },
    ]);
  });

  it('ride on the outcome whether the others were accepted or every recipient was refused', () => {
    const bounce = smtpError({ message: 'Recipient command failed', code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 User unknown', command: 'RCPT TO', recipient: 'gone@example.org' });
    const sent = sentOutcome({ messageId: '<m@x>', response: '250 OK', accepted: ['ok@example.org'], rejected: ['gone@example.org'], rejectedErrors: [bounce] });
    expect(sent).toMatchObject({ status: 'sent', suppress: [{ channel: 'email', address: 'gone@example.org', reason: 'hard-bounce' }] });
    const failed = failureOutcome(smtpError({ message: 'all refused', code: 'EENVELOPE', rejectedErrors: [bounce] }), server);
    expect(failed).toMatchObject({ status: 'failed', suppress: [{ address: 'gone@example.org', code: '550 5.1.1' }] });
  });
});
