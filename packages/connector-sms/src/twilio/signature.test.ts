import { describe, expect, it } from 'vitest';
import { twilioSignature, verifyTwilioSignature } from './signature.ts';

// The worked example of twilio.com/docs/usage/security ("Validating signatures from Twilio").
const TOKEN = '12345';
const URL_CALLED = 'https://mycompany.com/myapp.php?foo=1&bar=2';
const BODY = 'CallSid=CA1234567890ABCDE&Caller=%2B12349013030&Digits=1234&From=%2B12349013030&To=%2B18005551212';
const DOCUMENTED_SIGNATURE = '0/KCTR6DLpKmkAf8muzZqo1nDgQ=';

describe('X-Twilio-Signature', () => {
  it("reproduces Twilio's documented example", () => {
    expect(twilioSignature(TOKEN, URL_CALLED, new URLSearchParams(BODY))).toBe(DOCUMENTED_SIGNATURE);
  });

  it('verifies the example and refuses any change to token, URL or parameters', () => {
    const params = new URLSearchParams(BODY);
    expect(verifyTwilioSignature(TOKEN, DOCUMENTED_SIGNATURE, [URL_CALLED], params)).toBe(true);
    expect(verifyTwilioSignature('54321', DOCUMENTED_SIGNATURE, [URL_CALLED], params)).toBe(false);
    expect(verifyTwilioSignature(TOKEN, DOCUMENTED_SIGNATURE, ['https://mycompany.com/myapp.php?foo=1&bar=3'], params)).toBe(false);
    const tampered = new URLSearchParams(BODY);
    tampered.set('Digits', '1235');
    expect(verifyTwilioSignature(TOKEN, DOCUMENTED_SIGNATURE, [URL_CALLED], tampered)).toBe(false);
    expect(verifyTwilioSignature(TOKEN, 'short', [URL_CALLED], params)).toBe(false);
  });

  it('accepts the URL with its default port written out, as Twilio validators do', () => {
    const params = new URLSearchParams(BODY);
    expect(verifyTwilioSignature(TOKEN, DOCUMENTED_SIGNATURE, ['https://mycompany.com:443/myapp.php?foo=1&bar=2'], params)).toBe(true);
    expect(verifyTwilioSignature(TOKEN, DOCUMENTED_SIGNATURE, ['https://mycompany.com:8443/myapp.php?foo=1&bar=2'], params)).toBe(false);
  });
});
