import { BareLayout } from './bare.js';

export interface SignInData {
  styles: string[];
  /** where to go after signing in (a local path) */
  next: string;
  /** why the last attempt failed */
  error?: string;
}

/** Sign in once with a grants token; the server answers with a session cookie. */
export function SignInPage({ d }: { d: SignInData }) {
  return (
    <BareLayout title="Sign in" styles={d.styles}>
      <section class="signin">
        <h1>Sign in to egress-triage</h1>
        <p class="muted">Use the token of your entry in the server's grants file. It is checked once; the browser then keeps a session cookie.</p>
        {d.error ? (
          <p class="notice error" role="alert">
            {d.error}
          </p>
        ) : null}
        <form method="post" action="/signin">
          <input type="hidden" name="next" value={d.next} />
          <label for="token">Token</label>
          <input id="token" name="token" type="password" autocomplete="current-password" required />
          <button class="primary" type="submit">
            Sign in
          </button>
        </form>
      </section>
    </BareLayout>
  );
}
