package io.loraspark.pipeline.sweep;

import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.spark.GroupTask;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.util.LongAccumulator;

/**
 * The Spark function of a sweep stage: runs one group task on the executor it lands on, counting
 * every optimizer step, its scored tokens and each adapter that ends into accumulators the driver's
 * progress bar reads.
 */
final class RunGroup implements FlatMapFunction<GroupTask, AdapterOutcome> {
  private static final long serialVersionUID = 1L;

  private final LongAccumulator steps;
  private final LongAccumulator tokens;
  private final LongAccumulator adapters;

  RunGroup(LongAccumulator steps, LongAccumulator tokens, LongAccumulator adapters) {
    this.steps = steps;
    this.tokens = tokens;
    this.adapters = adapters;
  }

  @Override
  public Iterator<AdapterOutcome> call(GroupTask task) {
    TaskContext ctx = TaskContext.get();
    int attempt = ctx == null ? 0 : ctx.attemptNumber();
    long[] atRung = {0};
    List<AdapterOutcome> out =
        task.run(
            attempt,
            m -> {
              steps.add(1);
              tokens.add(m.tokens());
              if (m.step() == task.stopAt()) {
                adapters.add(1);
                atRung[0]++;
              }
            });
    adapters.add(out.size() - atRung[0]); // failed, or resumed already at the rung
    return out.iterator();
  }
}
