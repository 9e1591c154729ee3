/**
 * A generator worker: a child process (pinned to the generator core by the
 * orchestrator) that runs one job it receives over IPC and reports back.
 * Several workers split the idle-connection scenarios, since one process may
 * hold at most 20,000 descriptors. A worker exits when its job is done, when
 * the orchestrator goes away, or when its own time limit runs out.
 * @module
 */
import { openIdle, PairsLoad, runChurn, runPairs, type ChurnJob, type IdleHandle, type IdleJob, type PairsJob } from './generator.js';

/** `sliced`: pairs that connect, then loop only in the slices the orchestrator asks for (`slice`), and report at `close`. */
export type WorkerJob = ({ kind: 'pairs' } & PairsJob) | ({ kind: 'sliced' } & PairsJob) | ({ kind: 'idle' } & IdleJob) | ({ kind: 'churn' } & ChurnJob);

export type WorkerRequest = { type: 'run'; job: WorkerJob; limitMs: number } | { type: 'slice'; warmMs: number; measureMs: number } | { type: 'close' };
export type WorkerReply =
  | { type: 'result'; result: unknown }
  | { type: 'opened'; opened: number; ms: number }
  | { type: 'sliced' }
  | { type: 'error'; message: string };

// Resolves once the reply left: exiting right after a bare send could drop it.
const send = (reply: WorkerReply): Promise<void> =>
  new Promise((resolve) => {
    if (!process.send) resolve();
    else process.send(reply, () => resolve());
  });

let idle: IdleHandle | undefined;
let load: PairsLoad | undefined;

async function run(job: WorkerJob): Promise<void> {
  switch (job.kind) {
    case 'pairs':
      await send({ type: 'result', result: await runPairs(job) });
      process.exit(0);
      break;
    case 'churn':
      await send({ type: 'result', result: await runChurn(job) });
      process.exit(0);
      break;
    case 'idle':
      idle = await openIdle(job);
      await send({ type: 'opened', opened: idle.opened, ms: idle.ms });
      break;
    case 'sliced':
      load = await PairsLoad.open(job);
      await send({ type: 'opened', opened: job.pairs * 2, ms: load.connectMs });
      break;
  }
}

const fail = (error: unknown): void => {
  void send({ type: 'error', message: error instanceof Error ? error.message : String(error) }).then(() => process.exit(1));
};

process.on('message', (request: WorkerRequest) => {
  if (request.type === 'run') {
    setTimeout(() => {
      void send({ type: 'error', message: `worker time limit of ${request.limitMs} ms reached` }).then(() => process.exit(3));
    }, request.limitMs).unref();
    run(request.job).catch(fail);
  } else if (request.type === 'slice') {
    if (!load) return fail(new Error('slice before a sliced job'));
    load.measure(request.warmMs, request.measureMs).then(() => send({ type: 'sliced' }), fail);
  } else if (request.type === 'close') {
    const result = load ? load.result() : null;
    const done = idle ? idle.close() : load ? load.close() : Promise.resolve();
    void done.then(() => send({ type: 'result', result })).then(() => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
