/**
 * Mail for the hosted pages (reset and signup links). Two transports behind
 * one interface: the development outbox (the default: mail is kept in the
 * store and listed by `mezusphere mail outbox`), and SMTP through nodemailer
 * for real deployments (`mezusphere edge --smtp smtp://user:pass@host:587`).
 * Flows never wait on a send before answering (an SMTP round trip would
 * change the response time, and timing must not tell whether an account
 * exists); a failed send is logged with MEZU_MAIL_FAILED.
 */
import { randomBytes } from 'node:crypto';
import type { OutboxStore } from '../store/index.js';

export interface Mail {
  projectId: string;
  to: string;
  subject: string;
  text: string;
}

export interface Mailer {
  /** Where mail goes, for start-up logs (`outbox` or the SMTP host). */
  readonly description: string;
  send(mail: Mail): Promise<void>;
  close(): Promise<void>;
}

export class OutboxMailer implements Mailer {
  readonly description = 'development outbox (read it with `mezusphere mail outbox`)';
  constructor(private readonly outbox: OutboxStore) {}
  async send(mail: Mail): Promise<void> {
    await this.outbox.add({ id: randomBytes(6).toString('hex'), at: Date.now(), projectId: mail.projectId, to: mail.to, subject: mail.subject, text: mail.text });
  }
  async close(): Promise<void> {}
}

interface Transport {
  sendMail(m: { from: string; to: string; subject: string; text: string }): Promise<unknown>;
  close(): void;
}

export class SmtpMailer implements Mailer {
  readonly description: string;
  private readonly transport: Transport;
  constructor(url: string, private readonly from: string) {
    const u = new URL(url);
    if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') throw new Error(`mail: --smtp must be an smtp:// or smtps:// URL; got "${u.protocol}"`);
    this.description = `SMTP ${u.protocol}//${u.host}`;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodemailer = require('nodemailer') as { createTransport(url: string, defaults?: object): Transport };
    // A pooled transport keeps a few connections open instead of one handshake per mail.
    this.transport = nodemailer.createTransport(url.includes('pool=') ? url : `${url}${u.search === '' ? '?' : '&'}pool=true`);
  }
  async send(mail: Mail): Promise<void> {
    await this.transport.sendMail({ from: this.from, to: mail.to, subject: mail.subject, text: mail.text });
  }
  async close(): Promise<void> {
    this.transport.close();
  }
}
