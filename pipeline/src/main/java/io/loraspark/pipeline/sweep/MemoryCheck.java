package io.loraspark.pipeline.sweep;

import io.loraspark.train.data.TokenLimits;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.spark.TrainingData;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.function.Consumer;
import org.apache.spark.sql.SparkSession;

/**
 * The sweep's first stage on the driver: reads the data (so a bad input fails before any task) and
 * holds the {@link MemoryPlan} of the plan against the executors' JavaCPP physical-memory limit.
 */
final class MemoryCheck {
  private MemoryCheck() {}

  /**
   * Reads the data once on the driver (a bad input fails here, before any task) and refuses a plan
   * whose base + adapters + activations cannot fit the executor's JavaCPP physical-memory limit.
   *
   * @return the data's train and eval rows
   */
  static TrainingData.Split beforeTraining(
      SparkSession spark,
      SweepConfig config,
      List<SweepPlan.Planned> plan,
      Path model,
      String data,
      int threadsPerTask,
      Consumer<String> progress) {
    ModelConfig shape = ModelConfig.load(model);
    TrainingData.Split rows = TrainingData.get(data, TokenLimits.of(shape));
    int maxLen = rows.train().stream().mapToInt(TokenRow::length).max().orElse(1);
    boolean local = spark.sparkContext().isLocal();
    int cores =
        local
            ? spark.sparkContext().defaultParallelism()
            : Integer.parseInt(spark.conf().get("spark.executor.cores", "1"));
    int tasks = (int) Math.ceil(plan.size() / (double) config.adaptersPerTask());
    MemoryPlan mp =
        MemoryPlan.estimate(
            shape,
            plan.stream().map(SweepPlan.Planned::spec).toList(),
            config.adaptersPerTask(),
            config.baseQuant(),
            config.precision(),
            config.recomputeActivations(),
            maxLen,
            Math.max(1, Math.min(cores / Math.max(1, threadsPerTask), tasks)));
    String key = "org.bytedeco.javacpp.maxphysicalbytes";
    OptionalLong budget =
        MemoryPlan.sizeOption(spark.conf().get("spark.executor.extraJavaOptions", ""), key);
    String source = "spark.executor.extraJavaOptions -D" + key;
    if (budget.isEmpty() && local && System.getProperty(key) != null) {
      budget = MemoryPlan.parseSize(System.getProperty(key));
      source = "this JVM's -D" + key;
    }
    if (budget.isPresent()) {
      mp.check(budget.getAsLong(), source);
    }
    progress.accept(
        String.format(
            Locale.ROOT,
            "sweep plan: %d adapters, %d per task, about %s per executor%s",
            plan.size(),
            config.adaptersPerTask(),
            MemoryPlan.human(mp.totalBytes()),
            budget.isPresent() ? " of " + MemoryPlan.human(budget.getAsLong()) : ""));
    return rows;
  }
}
