/** What the global setup hands to every test file: where the run's Cassandra answers. */
export interface CassandraContext {
  /** host:port, e.g. "127.0.0.1:9042" */
  contactPoint: string;
  /** the data center the driver must name as local, e.g. "datacenter1" */
  localDataCenter: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    cassandra: CassandraContext;
  }
}
