// The dashboard: sign-in with an API key, then Live, History, Inspection, Trends and (ADMIN) Setup.

import { render } from 'preact';
import { lazy, Suspense } from 'preact/compat';
import { useEffect, useState } from 'preact/hooks';
import { forgetKey, may, signIn, storedSession, type Session } from './api.ts';
import { href, useRoute } from './route.ts';
import './style.css';
import { History } from './views/History.tsx';
import { Inspection } from './views/Inspection.tsx';
import { Live } from './views/Live.tsx';
import { Setup } from './views/Setup.tsx';

// uPlot only loads with Trends.
const Trends = lazy(() => import('./views/Trends.tsx'));

function SignIn(props: { onSession: (s: Session) => void; message: string | null }) {
  const [error, setError] = useState<string | null>(props.message);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const key = String(new FormData(e.target as HTMLFormElement).get('key') ?? '');
    setBusy(true);
    setError(null);
    try {
      props.onSession(await signIn(key));
    } catch (err) {
      setError(`Sign-in failed: ${(err as Error).message}`);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="signin" onSubmit={submit}>
      <h1>ttt-inspect</h1>
      <label>
        API key
        <input name="key" type="password" autoComplete="off" placeholder="ttt_…" required />
      </label>
      <button disabled={busy}>Sign in</button>
      {error && (
        <p class="error" role="alert" data-testid="signin-error">
          {error}
        </p>
      )}
      <p class="muted">The key is kept for this browser tab only (sessionStorage) and sent as "Authorization: Bearer".</p>
    </form>
  );
}

function App() {
  // A reload keeps the tab's session; its key and role are confirmed in the background.
  const [session, setSession] = useState<Session | null>(storedSession);
  const [message, setMessage] = useState<string | null>(null);
  const route = useRoute();

  useEffect(() => {
    const stored = storedSession();
    if (!stored) return;
    signIn(stored.key).then(setSession, (e: Error) => {
      forgetKey();
      setSession(null);
      setMessage(`Signed out: ${e.message}`);
    });
  }, []);

  if (!session) return <SignIn onSession={setSession} message={message} />;

  const signOut = () => {
    forgetKey();
    setSession(null);
  };
  const product = route.params.get('product');
  const tabs: [string, string][] = [
    ['live', 'Live'],
    ['history', 'History'],
    ['trends', 'Trends'],
    ...(may(session, 'ADMIN') ? ([['setup', 'Setup']] as [string, string][]) : []),
  ];
  let view;
  switch (route.view) {
    case 'history':
      view = <History session={session} params={route.params} />;
      break;
    case 'inspection':
      view = route.arg ? <Inspection session={session} id={route.arg} /> : <p>No inspection given.</p>;
      break;
    case 'trends':
      view = (
        <Suspense fallback={<p>Loading…</p>}>
          <Trends session={session} params={route.params} />
        </Suspense>
      );
      break;
    case 'setup':
      view = may(session, 'ADMIN') ? <Setup session={session} /> : <p class="error">Product setup needs an ADMIN key.</p>;
      break;
    default:
      view = <Live session={session} productId={product} />;
  }
  return (
    <>
      <header>
        <strong>ttt-inspect</strong>
        <nav>
          {tabs.map(([id, label]) => (
            <a key={id} href={href(id, product && id !== 'setup' ? { product } : {})} class={route.view === id || (id === 'live' && !['history', 'trends', 'setup', 'inspection'].includes(route.view)) ? 'active' : ''}>
              {label}
            </a>
          ))}
        </nav>
        <span class="who" data-testid="who">
          {session.name ?? 'key'} · {session.role}
        </span>
        <button class="link" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main>{view}</main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
