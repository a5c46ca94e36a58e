/**
 * Create or edit a connector through a form generated from its plugin's config spec
 * (GET /connector-plugins/{plugin}/config), checked as the operator types against
 * PUT /connector-plugins/{plugin}/config/validate. Secrets are write-only: a stored one is
 * never shown, and sent back as `[hidden]` (which the API reads as "keep the stored value").
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { api, enc, get, type ConfigDefinition, type ConfigValidation, type ConnectorInfo } from '../api.ts';
import { ErrorBox, Link } from '../components.tsx';
import { useDebounced, useLoad } from '../hooks.ts';
import { navigate, queryParam } from '../router.ts';

const HIDDEN = '[hidden]';
/** The keys the form sets itself rather than as fields. */
const FIXED = new Set(['connector.class']);

function PluginChooser() {
  const plugins = useLoad(() => get<Array<{ class: string; type: string; version?: string }>>('/connector-plugins'), []);
  return (
    <section>
      <h1>New connector</h1>
      <ErrorBox error={plugins.error} />
      <p>Choose the connector class:</p>
      <ul class="plugins">
        {plugins.data?.map((p) => (
          <li key={p.class}>
            <Link href={`/connectors/new?plugin=${enc(p.class)}`} class="button">
              {p.class}
            </Link>{' '}
            <span class="muted">
              {p.type} {p.version}
            </span>
          </li>
        ))}
      </ul>
    </section>
  );
}

export function ConnectorFormPage(props: { path: string; name?: string }) {
  const existing = useLoad(async () => (props.name ? get<ConnectorInfo>(`/connectors/${enc(props.name)}`) : undefined), [props.name]);
  const plugin = props.name ? existing.data?.config['connector.class'] : queryParam(props.path, 'plugin');
  if (!props.name && !plugin) return <PluginChooser />;
  if (props.name && !existing.data) return existing.error ? <ErrorBox error={existing.error} /> : <p class="muted">Loading…</p>;
  return <ConnectorForm key={`${plugin}/${props.name ?? ''}`} plugin={plugin!} existing={existing.data} />;
}

function ConnectorForm(props: { plugin: string; existing: ConnectorInfo | undefined }) {
  const { plugin, existing } = props;
  const editing = existing !== undefined;
  const definitions = useLoad(() => get<ConfigDefinition[]>(`/connector-plugins/${enc(plugin)}/config`), [plugin]);
  const [values, setValues] = useState<Record<string, string>>(() => ({ ...(existing?.config ?? {}), 'connector.class': plugin }));
  const [touched, setTouched] = useState<Set<string>>(() => new Set(editing ? Object.keys(existing.config) : []));
  const [submitted, setSubmitted] = useState(false);
  const [validation, setValidation] = useState<ConfigValidation>();
  const [failure, setFailure] = useState<Error>();
  const [saving, setSaving] = useState(false);
  const typeOf = useMemo(() => new Map((definitions.data ?? []).map((d) => [d.name, d.type])), [definitions.data]);

  /** The config as it is sent: set keys only; a secret left untouched keeps its stored value. */
  const config = useMemo(() => {
    const out: Record<string, string> = {};
    for (const [key, value] of Object.entries(values)) if (value !== '') out[key] = value;
    return out;
  }, [values]);

  const debounced = useDebounced(config, 350);
  useEffect(() => {
    let live = true;
    api<ConfigValidation>('PUT', `/connector-plugins/${enc(plugin)}/config/validate`, debounced)
      .then((result) => live && setValidation(result))
      .catch((error: unknown) => live && setFailure(error as Error));
    return () => void (live = false);
  }, [plugin, debounced]);

  const errorsOf = (name: string): string[] => {
    if (!touched.has(name) && !submitted) return [];
    return validation?.configs.find((c) => c.definition.name === name)?.value.errors ?? [];
  };

  const set = (name: string, value: string) => {
    setValues((v) => ({ ...v, [name]: value }));
    setTouched((t) => new Set(t).add(name));
  };

  const submit = async (event: Event) => {
    event.preventDefault();
    setSubmitted(true);
    setFailure(undefined);
    if (validation && validation.error_count > 0 && JSON.stringify(debounced) === JSON.stringify(config)) return;
    setSaving(true);
    try {
      const name = config.name ?? '';
      if (editing) await api('PUT', `/connectors/${enc(existing.name)}/config`, config);
      else await api('POST', '/connectors', { name, config });
      navigate(`/connectors/${enc(editing ? existing.name : name)}`);
    } catch (error) {
      setFailure(error as Error);
    } finally {
      setSaving(false);
    }
  };

  const groups = new Map<string, ConfigDefinition[]>();
  for (const d of definitions.data ?? []) {
    if (FIXED.has(d.name)) continue;
    const group = d.group ?? plugin;
    groups.set(group, [...(groups.get(group) ?? []), d]);
  }
  const known = new Set((definitions.data ?? []).map((d) => d.name));
  const others = Object.keys(values).filter((key) => !known.has(key));
  const errorCount = submitted ? (validation?.error_count ?? 0) : 0;

  return (
    <section>
      <h1>{editing ? `Edit ${existing.name}` : `New ${plugin}`}</h1>
      <ErrorBox error={definitions.error} />
      <form onSubmit={submit} aria-label="Connector config" noValidate>
        {[...groups].map(([group, defs]) => (
          <fieldset key={group}>
            <legend>{group}</legend>
            {defs.map((d) => (
              <Field
                key={d.name}
                definition={d}
                value={values[d.name] ?? ''}
                stored={existing?.config[d.name]}
                disabled={editing && d.name === 'name'}
                errors={errorsOf(d.name)}
                onChange={(value) => set(d.name, value)}
              />
            ))}
          </fieldset>
        ))}
        {others.length > 0 && (
          <fieldset>
            <legend>Other keys</legend>
            <p class="muted">Keys this plugin does not declare (kept as they are): {others.filter((k) => !FIXED.has(k)).join(', ') || 'none'}</p>
          </fieldset>
        )}
        {errorCount > 0 && (
          <p class="error" role="alert">
            {errorCount} {errorCount === 1 ? 'field needs' : 'fields need'} attention.
          </p>
        )}
        <ErrorBox error={failure} />
        <div class="actions">
          <button type="submit" class="primary" disabled={saving || definitions.data === undefined}>
            {editing ? 'Save' : 'Create'}
          </button>
          <Link href={editing ? `/connectors/${enc(existing.name)}` : '/connectors'} class="button">
            Cancel
          </Link>
          <span class="muted">{[...typeOf.values()].includes('PASSWORD') ? 'Secrets are write-only: stored ones are never shown.' : ''}</span>
        </div>
      </form>
    </section>
  );
}

function Field(props: {
  definition: ConfigDefinition;
  value: string;
  /** The value the API returned for this key when editing (`[hidden]` for a secret). */
  stored: string | undefined;
  disabled: boolean;
  errors: string[];
  onChange: (value: string) => void;
}) {
  const d = props.definition;
  const id = `field-${d.name.replace(/[^a-zA-Z0-9_-]/g, '_')}`;
  const describedBy = `${id}-doc${props.errors.length > 0 ? ` ${id}-errors` : ''}`;
  const common = {
    id,
    name: d.name,
    disabled: props.disabled,
    'aria-invalid': props.errors.length > 0,
    'aria-describedby': describedBy,
  };
  let input;
  if (d.type === 'BOOLEAN') {
    input = (
      <select {...common} value={props.value} onChange={(e) => props.onChange(e.currentTarget.value)}>
        <option value="">default ({d.default_value ?? 'none'})</option>
        <option value="true">true</option>
        <option value="false">false</option>
      </select>
    );
  } else if (d.type === 'PASSWORD') {
    // Write-only: the field starts empty and what the API returned (`[hidden]`, or a placeholder
    // such as ${env:…}) is sent back until something is typed.
    const typed = props.value === HIDDEN || props.value === props.stored ? '' : props.value;
    input = (
      <input
        {...common}
        type="password"
        autoComplete="new-password"
        value={typed}
        placeholder={props.stored !== undefined ? 'stored, not shown: type to replace' : ''}
        onInput={(e) => props.onChange(e.currentTarget.value === '' && props.stored !== undefined ? props.stored : e.currentTarget.value)}
      />
    );
  } else {
    const numeric = d.type === 'INT' || d.type === 'LONG' || d.type === 'SHORT' || d.type === 'DOUBLE';
    input = (
      <input
        {...common}
        type="text"
        inputMode={numeric ? 'decimal' : undefined}
        spellcheck={false}
        value={props.value}
        placeholder={d.default_value ?? ''}
        onInput={(e) => props.onChange(e.currentTarget.value)}
      />
    );
  }
  return (
    <div class={`field${props.errors.length > 0 ? ' invalid' : ''}`} data-field={d.name}>
      <label for={id}>
        {d.display_name}
        {d.required && <span aria-label="required"> *</span>} <span class="type">{d.type.toLowerCase()}</span>
      </label>
      {input}
      <small id={`${id}-doc`} class="doc">
        {d.documentation}
        {d.default_value !== null && d.default_value !== '' && ` Default: ${d.default_value}.`}
      </small>
      {props.errors.length > 0 && (
        <ul id={`${id}-errors`} class="field-error" role="alert">
          {props.errors.map((e) => (
            <li key={e}>{e}</li>
          ))}
        </ul>
      )}
    </div>
  );
}
