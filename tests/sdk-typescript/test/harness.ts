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
import { bundleWorkflowCode, DefaultLogger, LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { test } from 'node:test';

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

// Dynamic config for the reference dev server: no version check; updates (incl. the async accepted
// wait stage) and update-with-start switched on. Perdura accepts and ignores them.
export const DEV_SERVER_DYNAMIC_CONFIG = [
  'frontend.enableServerVersionCheck=false',
  'frontend.enableUpdateWorkflowExecution=true',
  'frontend.enableUpdateWorkflowExecutionAsyncAccepted=true',
  'frontend.enableExecuteMultiOperation=true',
];

const PORT_LOW = 20000;
const PORT_SPAN = 12000;
let portsHandedOut = 0;

/** Whether 127.0.0.1:port can be bound now. */
function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A port for a server: bindable now, never handed out twice by this process, and below the
 * kernel's ephemeral range (32768-60999 by default). A port from that range (what listening on
 * port 0 gives) can become an outgoing connection's source port before the server binds it.
 * Each process starts at its own offset in the range.
 */
export async function freePort(): Promise<number> {
  const offset = (process.pid * 7919) % PORT_SPAN;
  while (portsHandedOut < PORT_SPAN) {
    const port = PORT_LOW + ((offset + portsHandedOut) % PORT_SPAN);
    portsHandedOut += 1;
    if (await bindable(port)) return port;
  }
  throw new Error('every port below the ephemeral range was handed out');
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
      ...DEV_SERVER_DYNAMIC_CONFIG.flatMap((v) => ['--dynamic-config-value', v]),
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

// ---------------------------------------------------------------- seed scenarios

/** True when PERDURA_SERVER_CMD runs the Temporal CLI (its program name contains "temporal"). */
export function isReferenceServer(): boolean {
  const cmd = (process.env.PERDURA_SERVER_CMD ?? '').trim();
  if (!cmd) return false;
  return path.basename(serverCmd()[0]).includes('temporal');
}

export function isPerdura(): boolean {
  return !isReferenceServer();
}

/**
 * A test that needs a server feature Perdura does not have yet: skipped (reason "pending on
 * Perdura: <feature>") against Perdura, run unchanged against the reference server.
 * PERDURA_RUN_PENDING=1 runs it against Perdura too. Remove the marker when the feature lands.
 */
export function pendingOnPerdura(feature: string, name: string, fn: () => Promise<void>, options: { timeout?: number } = {}): void {
  const runAnyway = !['', '0'].includes(process.env.PERDURA_RUN_PENDING ?? '');
  const skip = isPerdura() && !runAnyway ? `pending on Perdura: ${feature}` : false;
  test(name, { timeout: options.timeout ?? 180_000, skip }, fn);
}

/** The workflow's last workflow task completed and none is scheduled: it is blocked. */
export function workflowTaskIdle(types: string[]): boolean {
  const wft = types.filter((t) => t.startsWith('WORKFLOW_TASK_'));
  return wft.length > 0 && wft[wft.length - 1] === 'WORKFLOW_TASK_COMPLETED';
}

/**
 * Polls the history until the workflow is idle and holds at least `count` events of type `event`
 * (e.g. 'TIMER_STARTED'); `also` is an extra predicate. Sending a signal, query or update only
 * after this keeps the history shape independent of timing.
 */
export async function waitBlocked(
  handle: { workflowId: string; fetchHistory(): Promise<temporal.api.history.v1.IHistory> },
  opts: { event?: string; count?: number; timeoutMs?: number; also?: (types: string[]) => boolean } = {},
): Promise<HistoryEvent[]> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    const events = (await handle.fetchHistory()).events ?? [];
    const types = eventTypes(events);
    const counted = opts.event === undefined || types.filter((t) => t === opts.event).length >= (opts.count ?? 1);
    if (workflowTaskIdle(types) && counted && (!opts.also || opts.also(types))) return events;
    if (Date.now() > deadline) {
      throw new Error(`workflow ${handle.workflowId} not blocked with ${opts.count ?? 1}x ${opts.event} ; history:\n${dump(events)}`);
    }
    await sleepMs(50);
  }
}

export async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleepMs(50);
  }
}

const WORKFLOW_TASK_EVENTS = new Set([
  'WorkflowTaskScheduled', 'WorkflowTaskStarted', 'WorkflowTaskCompleted', 'WorkflowTaskFailed', 'WorkflowTaskTimedOut',
]);

/** EVENT_TYPE_WORKFLOW_EXECUTION_STARTED -> WorkflowExecutionStarted (the fixtures' spelling). */
export function shape(events: HistoryEvent[], withoutWorkflowTasks = false): string[] {
  const types = events.map((e) =>
    typeName(e).split('_').map((p) => p.charAt(0) + p.slice(1).toLowerCase()).join(''));
  return withoutWorkflowTasks ? types.filter((t) => !WORKFLOW_TASK_EVENTS.has(t)) : types;
}

/**
 * Asserts that each collected event-type sequence equals the history-shape fixture the Python
 * suite recorded from the reference server (tests/fixtures/history-shapes/<scenario>.json).
 */
export function checkShapes(scenario: string, workflows: Record<string, string[]>): void {
  const file = path.join(__dirname, '..', '..', 'fixtures', 'history-shapes', `${scenario}.json`);
  const expected = JSON.parse(fs.readFileSync(file, 'utf8')).workflows as Record<string, string[]>;
  const problems: string[] = [];
  for (const [name, got] of Object.entries(workflows)) {
    const want = expected[name];
    if (!want) problems.push(`${name}: not in fixture ${file}`);
    else if (JSON.stringify(want) !== JSON.stringify(got)) {
      problems.push(`${name}: event types differ from the fixture:\n${lineDiff(want, got)}`);
    }
  }
  if (problems.length) throw new Error(`history shapes of scenario '${scenario}':\n${problems.join('\n\n')}`);
}

/** A plain LCS line diff: "-" only in the fixture (reference server), "+" only on this server. */
function lineDiff(want: string[], got: string[]): string {
  const n = want.length, m = got.length;
  const lcs: number[][] = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i][j] = want[i] === got[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const out: string[] = [];
  let i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && want[i] === got[j]) { out.push(`  ${want[i]}`); i++; j++; }
    else if (j < m && (i === n || lcs[i][j + 1] >= lcs[i + 1][j])) out.push(`+ ${got[j++]}`);
    else out.push(`- ${want[i++]}`);
  }
  return out.join('\n');
}

/** Bundles workflow code once per test file (bundling costs seconds; Worker.create reuses it). */
const bundles = new Map<string, Promise<{ code: string }>>();
export function workflowBundle(workflowsPath: string): Promise<{ code: string }> {
  let b = bundles.get(workflowsPath);
  if (!b) {
    b = bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
    bundles.set(workflowsPath, b);
  }
  return b;
}

export const SEED_WORKFLOWS_PATH = require.resolve('../src/seed-workflows');

/** Runs fn while a worker (bundled seed workflows by default) polls taskQueue; then shuts it down. */
export async function withWorker<T>(
  server: TestServer,
  opts: { taskQueue: string; activities?: object; workflowsPath?: string },
  fn: () => Promise<T>,
): Promise<T> {
  const connection = await NativeConnection.connect({ address: server.address });
  try {
    const worker = await Worker.create({
      connection, namespace: 'default', taskQueue: opts.taskQueue, activities: opts.activities,
      workflowBundle: await workflowBundle(opts.workflowsPath ?? SEED_WORKFLOWS_PATH),
    });
    return await worker.runUntil(fn);
  } finally {
    await connection.close();
  }
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${Math.random().toString(16).slice(2, 10)}`;
}
