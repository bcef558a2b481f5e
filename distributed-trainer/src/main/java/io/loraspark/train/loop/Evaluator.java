package io.loraspark.train.loop;

import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;

/** Scores token rows with a model (and optional adapters): the token-weighted mean NLL. */
public final class Evaluator {
  /** Rows per forward pass when scoring. */
  public static final int DEFAULT_BATCH_SIZE = 8;

  private Evaluator() {}

  /**
   * Sums the next-token NLL over every scored token of {@code rows}, batching rows of similar
   * length together to limit padding. The result has one group.
   *
   * @param padId id written at padded positions (never attended to or scored)
   */
  public static LossStats score(
      Transformer model, Adapters adapters, List<TokenRow> rows, int batchSize, int padId) {
    List<TokenRow> sorted = new ArrayList<>(rows);
    sorted.sort(Comparator.comparingInt(TokenRow::length));
    double nll = 0;
    long count = 0;
    for (int start = 0; start < sorted.size(); start += batchSize) {
      List<TokenRow> chunk = sorted.subList(start, Math.min(sorted.size(), start + batchSize));
      Batch batch = Batch.of(chunk, padId, new int[chunk.size()], 1, 0);
      Workspace ws = model.newWorkspace(batch.rows(), batch.seqLen());
      model.forward(batch, adapters, ws);
      LossStats s = model.loss(batch, ws);
      nll += s.totalNll();
      count += s.totalCount();
    }
    return new LossStats(new double[] {nll}, new long[] {count});
  }
}
