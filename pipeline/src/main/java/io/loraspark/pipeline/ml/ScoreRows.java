package io.loraspark.pipeline.ml;

import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import io.loraspark.train.spark.BaseModelCache;
import io.loraspark.train.spark.NativeThreads;
import java.io.Serializable;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.NoSuchElementException;
import org.apache.spark.api.java.function.MapPartitionsFunction;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.sql.Row;
import org.apache.spark.sql.RowFactory;

/**
 * Executor side of {@link LoraAdapterModel#transform}: appends each row's summed next-token NLL and
 * scored-token count, computed with the executor's shared base model plus the broadcast adapter (no
 * dropout). Rows are scored {@link Evaluator#DEFAULT_BATCH_SIZE} at a time in one forward pass,
 * each row its own loss group, and come out in input order; a row with null ids gets nulls.
 */
final class ScoreRows implements MapPartitionsFunction<Row, Row>, Serializable {
  private static final long serialVersionUID = 1L;

  private final String modelDir;
  private final Broadcast<AdapterTensors> adapter;
  private final TokenColumns columns;
  private final int threads;

  /**
   * @param modelDir base checkpoint directory, readable on the executor
   * @param adapter the adapter to apply
   * @param columns where the tokens are in the rows
   * @param threads BLAS/OpenMP threads for this task (its {@code spark.task.cpus})
   */
  ScoreRows(String modelDir, Broadcast<AdapterTensors> adapter, TokenColumns columns, int threads) {
    this.modelDir = modelDir;
    this.adapter = adapter;
    this.columns = columns;
    this.threads = threads;
  }

  @Override
  public Iterator<Row> call(Iterator<Row> input) {
    NativeThreads.configure(threads);
    Transformer base = BaseModelCache.get(Path.of(modelDir));
    Adapters lora =
        FusedLora.inference(
            adapter.value().toWeights(base.weights(), base.weights().embed().dataType()));
    return new Iterator<>() {
      private final ArrayDeque<Row> ready = new ArrayDeque<>();

      @Override
      public boolean hasNext() {
        if (ready.isEmpty() && input.hasNext()) {
          ready.addAll(scoreChunk(base, lora, input));
        }
        return !ready.isEmpty();
      }

      @Override
      public Row next() {
        if (!hasNext()) {
          throw new NoSuchElementException();
        }
        return ready.poll();
      }
    };
  }

  /** The next up-to-batch-size input rows with nll and tokens appended, in input order. */
  private List<Row> scoreChunk(Transformer base, Adapters lora, Iterator<Row> input) {
    List<Row> rows = new ArrayList<>();
    List<TokenRow> tokens = new ArrayList<>();
    while (input.hasNext() && rows.size() < Evaluator.DEFAULT_BATCH_SIZE) {
      Row r = input.next();
      rows.add(r);
      tokens.add(columns.row(r));
    }
    List<TokenRow> scored = tokens.stream().filter(t -> t != null).toList();
    LossStats stats = scored.isEmpty() ? null : score(base, lora, scored);
    List<Row> out = new ArrayList<>(rows.size());
    int g = 0;
    for (int i = 0; i < rows.size(); i++) {
      boolean has = tokens.get(i) != null;
      out.add(append(rows.get(i), has ? stats.nllSums()[g] : null, has ? stats.counts()[g] : null));
      g += has ? 1 : 0;
    }
    return out;
  }

  /** One forward pass over {@code rows}, row i in loss group i. */
  private static LossStats score(Transformer base, Adapters lora, List<TokenRow> rows) {
    int[] groups = new int[rows.size()];
    for (int i = 0; i < groups.length; i++) {
      groups[i] = i;
    }
    Batch batch = Batch.of(rows, 0, groups, groups.length, 0);
    Workspace ws = base.newWorkspace(batch.rows(), batch.seqLen());
    base.forward(batch, lora, ws);
    return base.loss(batch, ws);
  }

  private static Row append(Row r, Double nll, Long count) {
    Object[] values = new Object[r.length() + 2];
    for (int i = 0; i < r.length(); i++) {
      values[i] = r.get(i);
    }
    values[r.length()] = nll;
    values[r.length() + 1] = count;
    return RowFactory.create(values);
  }
}
