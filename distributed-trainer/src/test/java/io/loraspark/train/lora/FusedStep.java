package io.loraspark.train.lora;

import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One fused multi-adapter step on a random batch, shared by the family's finite-difference gradient
 * tests: two rows per adapter (optionally one of them shorter, so padding is in play), the first
 * two labels of each row unscored; forward, loss and backward from zeroed gradients. {@link
 * #objective} re-evaluates the trained objective Σ_k mean loss_k with the same dropout masks, and
 * {@link #numeric} the central difference of one weight entry.
 */
final class FusedStep {
  final Transformer model;
  final Batch batch;
  final Workspace ws;
  final FusedLora fused;

  private FusedStep(Transformer model, Batch batch, Workspace ws, FusedLora fused) {
    this.model = model;
    this.batch = batch;
    this.ws = ws;
    this.fused = fused;
  }

  /**
   * @param t the padded row length
   * @param shortRow the row made 2 tokens shorter, or -1 for none
   * @param slotSeed adapter k's dropout seed is {@code slotSeed + k}
   * @param step the step the dropout masks are drawn for
   */
  static FusedStep run(
      ModelWeights base,
      List<LoraWeights> adapters,
      Random rnd,
      int t,
      int shortRow,
      long slotSeed,
      long step) {
    int groups = adapters.size();
    List<int[]> ids = new ArrayList<>();
    List<int[]> labels = new ArrayList<>();
    int[] rowGroups = new int[2 * groups];
    for (int r = 0; r < 2 * groups; r++) {
      int len = r == shortRow ? t - 2 : t;
      int[] row = new int[len];
      int[] lab = new int[len];
      for (int i = 0; i < len; i++) {
        row[i] = rnd.nextInt(base.config().vocabSize());
        lab[i] = i < 2 ? Batch.IGNORE : row[i];
      }
      ids.add(row);
      labels.add(lab);
      rowGroups[r] = r / 2;
    }
    Batch batch = Batch.padded(ids, labels, 0, rowGroups, groups, t);
    Transformer model = new Transformer(base);
    Workspace ws = model.newWorkspace(2 * groups, t);
    FusedLora fused = new FusedLora();
    List<FusedLora.Slot> slots = new ArrayList<>();
    for (int k = 0; k < groups; k++) {
      slots.add(new FusedLora.Slot(adapters.get(k), 2 * k * t, 2 * (k + 1) * t, slotSeed + k));
    }
    fused.bind(slots, true, step);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    adapters.forEach(LoraWeights::zeroGrad);
    model.backward(batch, fused, ws, stats);
    return new FusedStep(model, batch, ws, fused);
  }

  /** Σ_k mean loss_k at the current weights, with the bound step's dropout masks. */
  double objective() {
    model.forward(batch, fused, ws);
    LossStats s = model.loss(batch, ws);
    double sum = 0;
    for (int g = 0; g < batch.groups(); g++) {
      sum += s.mean(g);
    }
    return sum;
  }

  /** d objective / d value[i] by central differences with step {@code eps}; value is restored. */
  double numeric(INDArray value, long i, double eps) {
    double orig = value.getDouble(i);
    value.putScalar(i, orig + eps);
    double plus = objective();
    value.putScalar(i, orig - eps);
    double minus = objective();
    value.putScalar(i, orig);
    return (plus - minus) / (2 * eps);
  }
}
