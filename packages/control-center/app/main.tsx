import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, checkCredentials, get, loadCredentials, saveCredentials, whenUnauthorized, type Credentials } from './api.ts';
import { Link } from './components.tsx';
import { match, usePath } from './router.ts';
import { ClusterPage } from './pages/cluster.tsx';
import { ConnectorPage, ConnectorsPage } from './pages/connectors.tsx';
import { ConnectorFormPage } from './pages/connector-form.tsx';
import { DeadLettersPage } from './pages/dead-letters.tsx';
import { GroupsPage } from './pages/groups.tsx';
import { LivePage } from './pages/live.tsx';
import { MessagePage } from './pages/message.tsx';
import { TopicsPage } from './pages/topics.tsx';
import './style.css';

type Session = { state: 'checking' } | { state: 'login'; challenges: string[]; error?: string } | { state: 'in' };

const NAV: Array<[href: string, label: string]> = [
  ['/', 'Cluster'],
  ['/connectors', 'Connectors'],
  ['/topics', 'Topics'],
  ['/messages', 'Message'],
  ['/groups', 'Groups'],
  ['/dead-letters', 'Dead letters'],
  ['/live', 'Live'],
];

function Page(props: { path: string }) {
  const { path } = props;
  let params: Record<string, string> | undefined;
  if (path === '/' || path.startsWith('/?')) return <ClusterPage />;
  if (match('/connectors', path)) return <ConnectorsPage />;
  if (match('/connectors/new', path)) return <ConnectorFormPage path={path} />;
  if ((params = match('/connectors/:name/edit', path))) return <ConnectorFormPage path={path} name={params.name} />;
  if ((params = match('/connectors/:name', path))) return <ConnectorPage name={params.name!} />;
  if (match('/topics', path)) return <TopicsPage />;
  if (match('/messages', path)) return <MessagePage path={path} />;
  if ((params = match('/messages/:id', path))) return <MessagePage id={params.id} />;
  if (match('/groups', path)) return <GroupsPage />;
  if ((params = match('/groups/:group', path))) return <GroupsPage group={params.group} />;
  if (match('/dead-letters', path)) return <DeadLettersPage path={path} />;
  if (match('/live', path)) return <LivePage />;
  return (
    <section>
      <h1>Not found</h1>
      <p>
        No page at {path}. <Link href="/">Back to the cluster</Link>
      </p>
    </section>
  );
}

function Login(props: { challenges: string[]; error?: string; onLogin: (credentials: Credentials) => void }) {
  const bearerOnly = props.challenges.length > 0 && !props.challenges.includes('basic');
  const [scheme, setScheme] = useState<'basic' | 'bearer'>(bearerOnly ? 'bearer' : 'basic');
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const offers = (s: string) => props.challenges.length === 0 || props.challenges.includes(s);
  return (
    <main class="login">
      <form
        aria-label="Sign in"
        onSubmit={(event) => {
          event.preventDefault();
          props.onLogin(scheme === 'basic' ? { scheme, user, password } : { scheme, token });
        }}
      >
        <h1>Omnibus control center</h1>
        <p class="muted">This worker asks for the credentials of its REST API (rest.auth.*). They are kept in this tab only.</p>
        {offers('basic') && offers('bearer') && (
          <div role="radiogroup" aria-label="Credentials" class="row">
            <label>
              <input type="radio" name="scheme" checked={scheme === 'basic'} onChange={() => setScheme('basic')} /> User and password
            </label>
            <label>
              <input type="radio" name="scheme" checked={scheme === 'bearer'} onChange={() => setScheme('bearer')} /> Bearer token
            </label>
          </div>
        )}
        {scheme === 'basic' ? (
          <>
            <label>
              User
              <input name="user" autoComplete="username" required value={user} onInput={(e) => setUser(e.currentTarget.value)} autoFocus />
            </label>
            <label>
              Password
              <input name="password" type="password" autoComplete="current-password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
            </label>
          </>
        ) : (
          <label>
            Token
            <input name="token" type="password" autoComplete="off" required value={token} onInput={(e) => setToken(e.currentTarget.value)} autoFocus />
          </label>
        )}
        {props.error && (
          <p class="error" role="alert">
            {props.error}
          </p>
        )}
        <button type="submit" class="primary">
          Sign in
        </button>
      </form>
    </main>
  );
}

type Theme = 'light' | 'dark' | 'auto';

function useTheme(): [Theme, (theme: Theme) => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('omnibus.theme') as Theme | null) ?? 'auto');
  useEffect(() => {
    if (theme === 'auto') delete document.documentElement.dataset.theme;
    else document.documentElement.dataset.theme = theme;
    localStorage.setItem('omnibus.theme', theme);
  }, [theme]);
  return [theme, setTheme];
}

function App() {
  const [session, setSession] = useState<Session>({ state: 'checking' });
  const [version, setVersion] = useState<string>();
  const [theme, setTheme] = useTheme();
  const path = usePath();
  // After a move to another page, the keyboard carries on from its content, not from the link left behind.
  const firstPath = useRef(true);
  useEffect(() => {
    if (firstPath.current) firstPath.current = false;
    else document.getElementById('main')?.focus({ preventScroll: true });
  }, [path]);

  const attempt = async (credentials: Credentials | undefined) => {
    try {
      await checkCredentials(credentials);
      saveCredentials(credentials);
      setSession({ state: 'in' });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        saveCredentials(undefined);
        setSession({ state: 'login', challenges: error.challenges, ...(credentials ? { error: 'The worker did not accept these credentials.' } : {}) });
      } else {
        setSession({ state: 'login', challenges: [], error: `The worker did not answer: ${(error as Error).message}` });
      }
    }
  };

  useEffect(() => {
    whenUnauthorized((error) => {
      saveCredentials(undefined);
      setSession({ state: 'login', challenges: error.challenges, error: 'Your session needs credentials again.' });
    });
    get<{ version: string }>('/')
      .then((root) => setVersion(root.version))
      .catch(() => undefined);
    void attempt(loadCredentials());
  }, []);

  if (session.state === 'checking') return <p class="muted center">Connecting to the worker…</p>;
  if (session.state === 'login') return <Login challenges={session.challenges} error={session.error} onLogin={(c) => void attempt(c)} />;
  const section = `/${path.split(/[/?]/)[1] ?? ''}`;
  return (
    <>
      <a href="#main" class="skip">
        Skip to content
      </a>
      <header>
        <span class="brand">Omnibus{version ? ` ${version}` : ''}</span>
        <nav aria-label="Pages">
          {NAV.map(([href, label]) => (
            <Link key={href} href={href} class={section === href ? 'current' : ''}>
              {label}
            </Link>
          ))}
        </nav>
        <span class="spacer" />
        <label class="theme">
          Theme{' '}
          <select value={theme} onChange={(e) => setTheme(e.currentTarget.value as Theme)}>
            <option value="auto">system</option>
            <option value="light">light</option>
            <option value="dark">dark</option>
          </select>
        </label>
        {loadCredentials() && (
          <button
            type="button"
            onClick={() => {
              saveCredentials(undefined);
              setSession({ state: 'login', challenges: [] });
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main id="main" tabIndex={-1}>
        <Page path={path} />
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
