import cassandra from 'cassandra-driver';
import { describe, expect, it } from 'vitest';
import { toHttpError } from '../errors.ts';
import { storeUnavailable } from './cql-errors.ts';

const { errors, types } = cassandra;
const codes = types.responseErrorCodes;

/** What the driver rejects a request with when its node's socket closes (lib/connection.js). */
function socketClosed(): Error {
  return Object.assign(new (errors.DriverError as unknown as new (message: string) => Error)('Socket was closed'), { isSocketError: true });
}

describe('storeUnavailable: which driver errors tell the client to retry', () => {
  it.each([
    ['Unavailable', new errors.ResponseError(codes.unavailableException, 'Cannot achieve consistency level LOCAL_QUORUM'), /too few replicas alive/],
    ['WriteTimeout', new errors.ResponseError(codes.writeTimeout, 'Operation timed out - received only 1 responses.'), /did not acknowledge a write in time/],
    ['ReadTimeout', new errors.ResponseError(codes.readTimeout, 'Operation timed out'), /did not answer a read in time/],
    ['Overloaded', new errors.ResponseError(codes.overloaded, 'overloaded'), /overloaded/],
    ['OperationTimedOut', new errors.OperationTimedOutError('client timeout', '127.0.0.2:9042'), /did not answer in time/],
    ['NoHostAvailable', new errors.NoHostAvailableError({}), /no node of the cluster can be reached/],
    ['a socket closed mid-request (a node killed)', socketClosed(), /connection to a node closed mid-request/],
  ])('%s becomes a 503 that says why and when to retry', (_, error, reason) => {
    const mapped = storeUnavailable(error);
    expect(mapped?.code).toBe('OMNI_ERR_STORE_UNAVAILABLE');
    expect(mapped?.message).toMatch(reason);
    expect(mapped?.message).toMatch(/nothing was acknowledged: retry after \d+ s/);
    expect(toHttpError(mapped)).toMatchObject({ status: 503, body: { error_code: 503 } });
  });

  it('names what the nodes answered when the driver tried them all', () => {
    const error = new errors.NoHostAvailableError({ '127.0.0.1:9042': new errors.ResponseError(codes.unavailableException, 'Cannot achieve consistency') });
    expect(storeUnavailable(error)?.message).toMatch(/too few replicas alive/);
  });

  it.each([
    ['a syntax error', new errors.ResponseError(codes.syntaxError, 'line 1:0 no viable alternative')],
    ['an invalid request', new errors.ResponseError(codes.invalid, 'Keyspace ks does not exist')],
    ['a write failure', new errors.ResponseError(codes.writeFailure, 'Operation failed')],
    ['an ordinary error', new Error('boom')],
    ['a driver error that is not about a connection', new errors.ArgumentError('Unexpected argument')],
    ['nothing', undefined],
  ])('leaves %s alone', (_, error) => {
    expect(storeUnavailable(error)).toBeUndefined();
  });
});
