/**
 * The benchmark's run order (bench/runOrder.ts): every repetition of
 * every job runs each target once, and no target runs first after a change of
 * job in more than one repetition of a job (the first run pays for the job
 * before it), as long as there are no more repetitions than targets.
 */
import t from 'tap';
import { runOrder } from '../../bench/runOrder';

t.test('each target once per run, and first at most once per job', async (t) => {
  const targets = ['libfuse', 'kernel', 'wbc', 'host', 'passthrough', 'bindfs', 'fuse2fs'];
  const jobs = 8;
  for (const reps of [1, 3, 7]) {
    let whole = 0;
    let repeatedFirst = 0;
    for (let job = 0; job < jobs; job++) {
      const firsts = new Set<string>();
      for (let rep = 1; rep <= reps; rep++) {
        const order = runOrder(targets, rep, job);
        if ([...order].sort().join() === [...targets].sort().join()) whole++;
        if (firsts.has(order[0])) repeatedFirst++;
        firsts.add(order[0]);
      }
    }
    t.equal(whole, jobs * reps, `${reps} reps: every run covers every target once`);
    t.equal(repeatedFirst, 0, `${reps} reps: no target first twice in one job`);
  }
  const firstOfEachJob = new Set(Array.from({ length: jobs }, (_, job) => runOrder(targets, 1, job)[0]));
  t.equal(firstOfEachJob.size, targets.length, 'within one repetition the first place moves from job to job');
  t.same(runOrder([], 2, 3), [], 'no targets, no runs');
});
