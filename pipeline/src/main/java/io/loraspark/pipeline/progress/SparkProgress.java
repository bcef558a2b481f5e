package io.loraspark.pipeline.progress;

import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.spark.SparkContext;
import org.apache.spark.SparkJobInfo;
import org.apache.spark.SparkStageInfo;
import org.apache.spark.scheduler.AccumulableInfo;
import org.apache.spark.scheduler.SparkListener;
import org.apache.spark.scheduler.SparkListenerExecutorMetricsUpdate;
import org.apache.spark.scheduler.SparkListenerTaskEnd;
import org.apache.spark.util.LongAccumulator;
import scala.Tuple4;
import scala.jdk.javaapi.CollectionConverters;

/**
 * Live values of a job's counters on the driver. An accumulator's driver-side value only grows when
 * a task finishes; while tasks run, executors send each running task's current values with their
 * heartbeats ({@code spark.executor.heartbeatInterval}). This listener keeps those and adds them to
 * the finished tasks' total, so a bar moves during a long task, and drops a task's values when it
 * ends (merged into the driver's value on success, discarded on failure).
 */
public final class SparkProgress extends SparkListener implements AutoCloseable {
  private final SparkContext sc;
  private final Map<Long, Boolean> tracked = new ConcurrentHashMap<>();
  private final Map<Long, Map<Long, Long>> live = new ConcurrentHashMap<>();
  private final AtomicInteger tasksDone = new AtomicInteger();

  private SparkProgress(SparkContext sc, List<LongAccumulator> accumulators) {
    this.sc = sc;
    accumulators.forEach(a -> tracked.put(a.id(), true));
  }

  /** Starts tracking {@code accumulators} and finished tasks from now on. */
  public static SparkProgress track(SparkContext sc, LongAccumulator... accumulators) {
    SparkProgress p = new SparkProgress(sc, List.of(accumulators));
    sc.addSparkListener(p);
    return p;
  }

  /** The accumulator's value: finished tasks' total plus what running tasks last reported. */
  public long value(LongAccumulator acc) {
    long v = acc.value();
    for (Map<Long, Long> task : live.values()) {
      v += task.getOrDefault(acc.id(), 0L);
    }
    return v;
  }

  /** Tasks that finished successfully since tracking started. */
  public int tasksDone() {
    return tasksDone.get();
  }

  @Override
  public void onExecutorMetricsUpdate(SparkListenerExecutorMetricsUpdate update) {
    for (Tuple4<Object, Object, Object, scala.collection.immutable.Seq<AccumulableInfo>> t :
        CollectionConverters.asJava(update.accumUpdates())) {
      long taskId = (Long) t._1();
      for (AccumulableInfo info : CollectionConverters.asJava(t._4())) {
        if (tracked.containsKey(info.id()) && info.update().isDefined()) {
          Object v = info.update().get();
          if (v instanceof Number n) {
            live.computeIfAbsent(taskId, k -> new ConcurrentHashMap<>())
                .put(info.id(), n.longValue());
          }
        }
      }
    }
  }

  @Override
  public void onTaskEnd(SparkListenerTaskEnd end) {
    live.remove(end.taskInfo().taskId());
    if (end.taskInfo().successful()) {
      tasksDone.incrementAndGet();
    }
  }

  @Override
  public void close() {
    sc.removeSparkListener(this);
  }

  /**
   * Task counts of the jobs in {@code jobGroup} so far, for stages whose total is not known in
   * advance (preprocessing): {@code jobs 2 · tasks 7/8}.
   */
  public static ProgressBar.Status jobGroupStatus(SparkContext sc, String jobGroup) {
    int jobs = 0;
    int done = 0;
    int total = 0;
    int active = 0;
    for (int jobId : sc.statusTracker().getJobIdsForGroup(jobGroup)) {
      scala.Option<SparkJobInfo> job = sc.statusTracker().getJobInfo(jobId);
      if (job.isEmpty()) {
        continue;
      }
      jobs++;
      for (int stageId : job.get().stageIds()) {
        scala.Option<SparkStageInfo> stage = sc.statusTracker().getStageInfo(stageId);
        if (stage.isDefined()) {
          done += stage.get().numCompletedTasks();
          total += stage.get().numTasks();
          active += stage.get().numActiveTasks();
        }
      }
    }
    return new ProgressBar.Status(
        Double.NaN,
        String.format(
            java.util.Locale.ROOT,
            "Spark jobs %d · tasks %d/%d done, %d running",
            jobs,
            done,
            total,
            active));
  }
}
