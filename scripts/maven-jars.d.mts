// Types for scripts/maven-jars.mjs (plain JavaScript, like scripts/cassandra.mjs which uses it).

export interface MavenJars {
  /** where the jars end up (created whole, or not at all) */
  libDir: string;
  /** a throwaway POM whose runtime dependencies are the jars wanted */
  pom: string;
  /** -D properties of the POM (e.g. the version) */
  properties: Record<string, string>;
  /** a jar whose presence in libDir means the copy is complete */
  markerJar: string;
  /** the same jar in ~/.m2: when there, a first offline attempt needs no network */
  m2Jar: string;
  /** what is fetched, for the log (e.g. "cassandra-all 5.0.8") */
  what: string;
  log: (line: string) => void;
}

export function jarsIn(dir: string): string[];
export function ensureMavenJars(jars: MavenJars): Promise<string>;
