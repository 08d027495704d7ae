/**
 * The SMTP transport against a real SMTP server process-side peer
 * (smtp-server, started by this test on loopback): the edge, started with
 * --smtp, delivers the reset mail there, and the link in it works.
 */
import test from 'ava';
import { SMTPServer } from 'smtp-server';
import { Stack } from './harness.js';
import { Client, LOGIN_CONFIG, hiddenFields, signUp } from './login-client.js';

interface Received {
  from: string;
  to: string[];
  data: string;
}
const received: Received[] = [];
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, session, cb) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      received.push({ from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address, to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(chunks).toString('utf8') });
      cb();
    });
  },
});
let stack: Stack;

test.before(async () => {
  const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.server.address() as { port: number }).port)));
  stack = new Stack(1, LOGIN_CONFIG(), ['--smtp', `smtp://127.0.0.1:${port}`, '--mail-from', 'Demo <login@demo.example>']);
  await stack.start();
});
test.after.always(async () => {
  await stack?.stop();
  await new Promise<void>((r) => server.close(() => r()));
});

test('signup and reset mail go through SMTP (not the outbox) and their links work', async (t) => {
  // Signup itself needs the confirmation mail: through SMTP now.
  const c = new Client(stack);
  await c.submit('/_mezu/signup', { email: 'smtp@example.com' });
  const signupMail = await waitMail('smtp@example.com', '/_mezu/signup/confirm');
  t.is(signupMail.from, 'login@demo.example');
  t.regex(signupMail.data, /Subject: Finish creating your Demo Co account/);
  const token = /\/_mezu\/signup\/confirm\?token=([A-Za-z0-9_-]{43})/.exec(qp(signupMail.data))![1]!;
  const done = await c.submit(`/_mezu/signup/confirm?token=${token}`, { password: 'smtp passphrase 123' });
  t.is(done.status, 303);
  const f = await c.submit('/_mezu/forgot', { email: 'smtp@example.com' });
  t.is(f.status, 200);
  const resetMail = await waitMail('smtp@example.com', '/_mezu/reset');
  const rt = /\/_mezu\/reset\?token=([A-Za-z0-9_-]{43})/.exec(qp(resetMail.data))![1]!;
  const form = await c.get(`/_mezu/reset?token=${rt}`);
  const r = await c.post('/_mezu/reset', { ...hiddenFields(form.body), password: 'smtp passphrase 456' });
  t.is(r.status, 200);
  const outbox = stack.cli('mail', 'outbox', '--json');
  t.deepEqual(JSON.parse(outbox.stdout), [], 'nothing went to the outbox');
  void signUp;
});

async function waitMail(to: string, path: string): Promise<Received> {
  const end = Date.now() + 10_000;
  for (;;) {
    const m = received.find((x) => x.to.includes(to) && qp(x.data).includes(path));
    if (m !== undefined) {
      received.splice(received.indexOf(m), 1);
      return m;
    }
    if (Date.now() > end) throw new Error(`no SMTP mail to ${to} with ${path}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Quoted-printable soft breaks and escapes (RFC 2045 §6.7), enough to read a link. */
function qp(s: string): string {
  return s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
}
