package io.loraspark.pipeline.ml;

import io.loraspark.train.loop.AdapterOutcome;
import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.FusedTrainer;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.spark.BaseModelCache;
import io.loraspark.train.spark.NativeThreads;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.apache.spark.sql.Row;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Executor side of {@link LoraEstimator#fit}: trains one adapter on every row of its (single)
 * partition with the executor's shared base model and returns it as arrays. Rows are sorted by
 * content first, so the result does not depend on the order the shuffle delivered them in: a
 * retried task, or a second fit on the same data and params, trains the same adapter.
 */
final class TrainOnPartition implements FlatMapFunction<Iterator<Row>, TrainOnPartition.Result> {
  private static final long serialVersionUID = 1L;
  private static final Logger LOG = LoggerFactory.getLogger(TrainOnPartition.class);

  /** What the task returns: the adapter and how it was trained. */
  record Result(AdapterTensors adapter, TrainingSummary summary) implements Serializable {}

  /** A total order on row content: ids, then labels, then segment ids. */
  private static final Comparator<TokenRow> BY_CONTENT =
      Comparator.<TokenRow, int[]>comparing(TokenRow::inputIds, Arrays::compare)
          .thenComparing(TokenRow::labels, Arrays::compare)
          .thenComparing(TokenRow::segmentIds, Arrays::compare);

  private final String modelDir;
  private final AdapterSpec spec;
  private final TokenColumns columns;
  private final int threads;
  private final boolean recomputeActivations;
  private final Precision precision;

  /**
   * @param modelDir base checkpoint directory, readable on the executor
   * @param spec the adapter to train
   * @param columns where the tokens are in the rows
   * @param threads BLAS/OpenMP threads for this task (its {@code spark.task.cpus})
   * @param recomputeActivations recompute each layer's activations during backward
   * @param precision the frozen projections' GEMM precision, resolved on the executor
   */
  TrainOnPartition(
      String modelDir,
      AdapterSpec spec,
      TokenColumns columns,
      int threads,
      boolean recomputeActivations,
      Precision precision) {
    this.modelDir = modelDir;
    this.spec = spec;
    this.columns = columns;
    this.threads = threads;
    this.recomputeActivations = recomputeActivations;
    this.precision = precision;
  }

  @Override
  public Iterator<Result> call(Iterator<Row> input) {
    List<TokenRow> rows = new ArrayList<>();
    long skipped = 0;
    while (input.hasNext()) {
      TokenRow r = columns.row(input.next());
      if (r == null) {
        skipped++;
      } else {
        rows.add(r);
      }
    }
    if (rows.isEmpty()) {
      throw new IllegalArgumentException(
          "LoraEstimator.fit: no row to train on (the dataset has "
              + skipped
              + " rows, none with non-null "
              + columns.idsName()
              + ")");
    }
    rows.sort(BY_CONTENT);
    NativeThreads.configure(threads);
    Transformer base = BaseModelCache.get(Path.of(modelDir), BaseQuant.NONE, precision);
    long t0 = System.nanoTime();
    TrainedAdapter trained =
        new FusedTrainer(base, List.of(spec), rows, List.of(), 0)
            .recomputingActivations(recomputeActivations)
            .run(m -> {})
            .get(0);
    AdapterOutcome t = trained.outcome();
    double seconds = (System.nanoTime() - t0) / 1e9;
    LOG.info(
        "adapter {}: {} after {} steps on {} rows, train loss {} ({} s)",
        spec.id(),
        t.status(),
        t.steps(),
        rows.size(),
        t.trainLoss(),
        seconds);
    TrainingSummary summary =
        new TrainingSummary(
            t.status(),
            t.failure(),
            t.steps(),
            t.trainLoss(),
            rows.size(),
            skipped,
            t.trainableParams(),
            seconds);
    return List.of(new Result(AdapterTensors.of(trained.weights(), modelDir), summary)).iterator();
  }
}
