/**
 * Prepared statements that survive schema changes.
 *
 * The server forgets a prepared statement when its table or keyspace is dropped (re-created
 * or not) or when its statement cache evicts it, and then answers UNPREPARED. cassandra-driver
 * prepares the statement again from its own cache, but when its cache no longer holds that id
 * (its cache is bounded too) it gives up with `DriverInternalError: Unprepared response
 * invalid`. The driver's cache is then out of step with the server: it is cleared, so that
 * every statement is prepared afresh, and the statement runs once more.
 */
import cassandra from 'cassandra-driver';

export function isLostPreparedStatement(error: unknown): boolean {
  return error instanceof cassandra.errors.DriverInternalError && /Unprepared response invalid/.test(error.message);
}

export async function executePrepared(
  client: cassandra.Client,
  query: string,
  params: unknown[],
  options: cassandra.QueryOptions = {},
): Promise<cassandra.types.ResultSet> {
  try {
    return await client.execute(query, params, { ...options, prepare: true });
  } catch (error) {
    if (!isLostPreparedStatement(error)) throw error;
    client.metadata.clearPrepared();
    return client.execute(query, params, { ...options, prepare: true });
  }
}
