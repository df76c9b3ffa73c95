// Server process management and history helpers for the TypeScript end-to-end tests.
//
// The server command comes from env PERDURA_SERVER_CMD (split on whitespace; quotes are honoured),
// default `$CARGO_TARGET_DIR/debug/perdura server start-dev`; the Temporal CLI dev-server flags are
// appended, so `PERDURA_SERVER_CMD="temporal server start-dev"` runs the same tests against the
// reference server.
import { spawn, ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DefaultLogger, LogLevel, Runtime } from '@temporalio/worker';

// Quiet SDK logs (worker state changes) unless asked: PERDURA_TS_LOG_LEVEL=INFO|DEBUG.
Runtime.install({ logger: new DefaultLogger((process.env.PERDURA_TS_LOG_LEVEL || 'WARN') as LogLevel) });

type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
const EventType = temporal.api.enums.v1.EventType;

export function serverCmd(): string[] {
  const env = (process.env.PERDURA_SERVER_CMD ?? '').trim();
  if (env) {
    return (env.match(/"[^"]*"|'[^']*'|\S+/g) ?? []).map((s) => s.replace(/^["']|["']$/g, ''));
  }
  const target = process.env.CARGO_TARGET_DIR || '/var/tmp/perdura-target';
  return [path.join(target, 'debug', 'perdura'), 'server', 'start-dev'];
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

const sleepMs = (ms: number) => new Promise((r) => setTimeout(r, ms));

// Servers are in process groups of their own: never leave one behind when this process exits.
const LIVE = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of LIVE) {
    try {
      process.kill(-p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
});

export class TestServer {
  readonly workdir: string;
  readonly dataPath: string;
  readonly logPath: string;
  port = 0;
  proc?: ChildProcess;
  exited = false;

  constructor(name: string) {
    const base = process.env.PERDURA_TEST_TMP || os.tmpdir();
    this.workdir = fs.mkdtempSync(path.join(base, `perdura-ts-${name}-`));
    this.dataPath = path.join(this.workdir, 'data'); // a directory for Perdura, a SQLite file for temporal
    this.logPath = path.join(this.workdir, 'server.log');
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(timeoutMs = 60_000): Promise<Client> {
    if (!this.port) this.port = await freePort();
    const [cmd, ...pre] = serverCmd();
    if (cmd.includes('/') && !fs.existsSync(cmd)) {
      throw new Error(`server binary ${cmd} does not exist: build it (cargo build -p perdura-node) or set PERDURA_SERVER_CMD`);
    }
    const args = [
      ...pre,
      '--port', String(this.port),
      '--ip', '127.0.0.1',
      '--namespace', 'default',
      '--headless',
      '--log-format', 'pretty',
      '--log-level', process.env.PERDURA_SERVER_LOG_LEVEL || 'warn',
      '--dynamic-config-value', 'frontend.enableServerVersionCheck=false',
      '--db-filename', this.dataPath,
    ];
    const log = fs.openSync(this.logPath, 'a');
    fs.writeSync(log, `\n===== start at ${new Date().toISOString()}: ${cmd} ${args.join(' ')}\n`);
    this.exited = false;
    this.proc = spawn(cmd, args, {
      stdio: ['ignore', log, log],
      detached: true, // own process group, so kill() takes all of it
      env: { RUST_LOG: 'info', RUST_BACKTRACE: '1', ...process.env },
    });
    fs.closeSync(log);
    const proc = this.proc;
    LIVE.add(proc);
    proc.on('exit', () => {
      LIVE.delete(proc);
      if (this.proc === proc) this.exited = true;
    });
    return await this.waitReady(timeoutMs);
  }

  /** Readiness = a connection whose GetSystemInfo succeeds, as the SDKs' test environments do. */
  async waitReady(timeoutMs: number): Promise<Client> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.exited) {
        throw new Error(`server exited before becoming ready; log tail:\n${this.logTail()}`);
      }
      try {
        const connection = await Connection.connect({ address: this.address, connectTimeout: 2000 });
        await connection.workflowService.getSystemInfo({});
        return new Client({ connection, namespace: 'default' });
      } catch (e) {
        last = e;
        await sleepMs(200);
      }
    }
    throw new Error(`server on ${this.address} not ready after ${timeoutMs} ms (${last}); log tail:\n${this.logTail()}`);
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.proc;
    if (!p || this.exited || p.pid === undefined) return;
    const exited = new Promise((r) => p.once('exit', r));
    try {
      process.kill(-p.pid, signal);
    } catch {
      /* already gone */
    }
    await Promise.race([exited, sleepMs(10_000)]);
    if (!this.exited) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      await exited;
    }
  }

  logTail(lines = 80): string {
    try {
      return fs.readFileSync(this.logPath, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '(no server log)';
    }
  }
}

/** Runs fn; on failure, appends the server's log tail to the error. */
export async function withServerLog<T>(server: TestServer, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof Error) {
      e.message += `\n--- server log tail (${server.logPath}) ---\n${server.logTail()}`;
    }
    throw e;
  }
}

export function uniqueTaskQueue(name: string): string {
  return `tq-ts-${name}-${Math.random().toString(16).slice(2, 10)}`;
}

// ---------------------------------------------------------------- history helpers

export function typeName(e: HistoryEvent): string {
  const name = EventType[e.eventType as number] as string;
  return name.replace(/^EVENT_TYPE_/, '');
}

export function eventTypes(events: HistoryEvent[]): string[] {
  return events.map(typeName);
}

export function eventIds(events: HistoryEvent[]): number[] {
  return events.map((e) => Number(e.eventId));
}

export function contiguous(events: HistoryEvent[]): boolean {
  return eventIds(events).every((id, i) => id === i + 1);
}

export function dump(events: HistoryEvent[]): string {
  return events.map((e) => `  ${Number(e.eventId)} ${typeName(e)}`).join('\n');
}

export function eventSeconds(e: HistoryEvent): number {
  const t = e.eventTime!;
  return Number(t.seconds ?? 0) + (t.nanos ?? 0) / 1e9;
}

/** Activity events of one kind, grouped by activity type (resolved through the Scheduled event). */
export function activityEvents(
  events: HistoryEvent[],
  kind: 'STARTED' | 'COMPLETED' | 'FAILED',
): Record<string, HistoryEvent[]> {
  const sched = new Map<number, string>();
  for (const e of events) {
    if (e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      sched.set(Number(e.eventId), e.activityTaskScheduledEventAttributes!.activityType!.name!);
    }
  }
  const out: Record<string, HistoryEvent[]> = {};
  for (const e of events) {
    let sid: number | undefined;
    if (kind === 'STARTED' && e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
      sid = Number(e.activityTaskStartedEventAttributes!.scheduledEventId);
    } else if (kind === 'COMPLETED' && e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
      sid = Number(e.activityTaskCompletedEventAttributes!.scheduledEventId);
    } else if (kind === 'FAILED' && e.eventType === EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED) {
      sid = Number(e.activityTaskFailedEventAttributes!.scheduledEventId);
    }
    if (sid === undefined) continue;
    const name = sched.get(sid);
    if (name === undefined) throw new Error(`event ${Number(e.eventId)} refers to unknown scheduled event ${sid}`);
    (out[name] ??= []).push(e);
  }
  return out;
}

export const ORDER_ACTIVITIES = ['charge_payment', 'decrement_inventory', 'send_confirmation', 'notify_warehouse'];

export function expectedOrderHistory(): string[] {
  const seq = ['WORKFLOW_EXECUTION_STARTED', 'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED'];
  for (const _ of ORDER_ACTIVITIES) {
    seq.push('ACTIVITY_TASK_SCHEDULED', 'ACTIVITY_TASK_STARTED', 'ACTIVITY_TASK_COMPLETED',
      'WORKFLOW_TASK_SCHEDULED', 'WORKFLOW_TASK_STARTED', 'WORKFLOW_TASK_COMPLETED');
  }
  seq.push('WORKFLOW_EXECUTION_COMPLETED');
  return seq;
}

export const WORKFLOWS_PATH = require.resolve('../src/workflows');
