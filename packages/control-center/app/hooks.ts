import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { getText } from './api.ts';
import { parsePrometheus, type Sample } from './prometheus.ts';

export interface Loaded<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
}

/** Loads once, then every `refreshMs` (if given) while the page is visible; keeps the last good data on errors. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[], refreshMs?: number): Loaded<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  useEffect(() => {
    let live = true;
    const run = () => {
      if (document.hidden && refreshMs) return;
      load()
        .then((value) => live && (setData(value), setError(undefined)))
        .catch((e: unknown) => live && setError(e as Error))
        .finally(() => live && setLoading(false));
    };
    run();
    const timer = refreshMs ? setInterval(run, refreshMs) : undefined;
    return () => {
      live = false;
      if (timer) clearInterval(timer);
    };
  }, [...deps, tick]);
  return { data, error, loading, reload };
}

export interface MetricsReading {
  at: number;
  samples: Sample[];
}

/** The worker's /metrics every `everyMs`, keeping the last `keep` readings (for rates and charts). */
export function useMetricsHistory(everyMs = 2000, keep = 90): { readings: MetricsReading[]; error: Error | undefined } {
  const [readings, setReadings] = useState<MetricsReading[]>([]);
  const [error, setError] = useState<Error>();
  const kept = useRef<MetricsReading[]>([]);
  useEffect(() => {
    let live = true;
    const read = async () => {
      if (document.hidden) return;
      try {
        const samples = parsePrometheus(await getText('/metrics'));
        if (!live) return;
        kept.current = [...kept.current, { at: Date.now(), samples }].slice(-keep);
        setReadings(kept.current);
        setError(undefined);
      } catch (e) {
        if (live) setError(e as Error);
      }
    };
    void read();
    const timer = setInterval(read, everyMs);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [everyMs, keep]);
  return { readings, error };
}

export function useDebounced<T>(value: T, ms: number): T {
  const [debounced, setDebounced] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setDebounced(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return debounced;
}
