/**
 * X-Twilio-Signature (twilio.com/docs/usage/security): base64 of HMAC-SHA1, keyed with the
 * account's auth token, over the full URL Twilio called followed by every POST parameter
 * sorted by name, each written as name then value.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export function twilioSignature(authToken: string, url: string, params: URLSearchParams): string {
  const names = [...new Set(params.keys())].sort();
  let signed = url;
  for (const name of names) {
    // A repeated name is signed once per value, values sorted, as Twilio's own helpers do.
    for (const value of params.getAll(name).sort()) signed += name + value;
  }
  return createHmac('sha1', authToken).update(signed, 'utf8').digest('base64');
}

/**
 * True when `signature` signs `params` for one of `urls`. Each URL is also tried with its
 * default port spelled out and left out, since Twilio's validators accept either form.
 */
export function verifyTwilioSignature(authToken: string, signature: string, urls: string[], params: URLSearchParams): boolean {
  const given = Buffer.from(signature, 'utf8');
  let valid = false;
  for (const url of new Set(urls.flatMap(portVariants))) {
    const expected = Buffer.from(twilioSignature(authToken, url, params), 'utf8');
    // Every candidate is compared, so the time taken does not tell which one matched.
    if (expected.length === given.length && timingSafeEqual(expected, given)) valid = true;
  }
  return valid;
}

/** The URL as given, and with its scheme's default port written out or left out. */
function portVariants(url: string): string[] {
  const match = /^(https?):\/\/([^/?#@]+)(.*)$/i.exec(url);
  if (!match) return [url];
  const [, scheme = '', authority = '', rest = ''] = match;
  const defaultPort = scheme.toLowerCase() === 'https' ? '443' : '80';
  const portMatch = /^(.*):(\d+)$/.exec(authority);
  const host = portMatch ? (portMatch[1] ?? '') : authority;
  const port = portMatch ? portMatch[2] : undefined;
  if (port !== undefined && port !== defaultPort) return [url];
  return [url, `${scheme}://${host}${rest}`, `${scheme}://${host}:${defaultPort}${rest}`];
}
