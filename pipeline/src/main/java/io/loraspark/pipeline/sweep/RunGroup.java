package io.loraspark.pipeline.sweep;

import io.loraspark.train.spark.AdapterOutcome;
import io.loraspark.train.spark.GroupTask;
import java.util.Iterator;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;

/** The Spark function of a sweep stage: runs one group task on the executor it lands on. */
final class RunGroup implements FlatMapFunction<GroupTask, AdapterOutcome> {
  private static final long serialVersionUID = 1L;

  @Override
  public Iterator<AdapterOutcome> call(GroupTask task) {
    TaskContext ctx = TaskContext.get();
    int attempt = ctx == null ? 0 : ctx.attemptNumber();
    return task.run(attempt, m -> {}).iterator();
  }
}
