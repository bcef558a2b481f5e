package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.ToDoubleBiFunction;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * One fused multi-adapter step on a random batch, shared by the family's finite-difference gradient
 * tests: two rows per adapter (optionally one of them shorter, so padding is in play), the first
 * two labels of each row unscored; forward, loss and backward from zeroed gradients. {@link
 * #objective} re-evaluates the trained objective Σ_k mean loss_k with the same dropout masks,
 * {@link #numeric} the central difference of one weight entry, and {@link #checkLayerZero} compares
 * the analytic gradients with those differences.
 */
final class FusedStep {
  final Transformer model;
  final Batch batch;
  final Workspace ws;
  final FusedLora fused;
  final List<LoraWeights> adapters;

  /**
   * What an analytic gradient leaves out by design (DoRA's detached norm), added to it before it is
   * compared with the central difference.
   */
  interface Correction {
    /** For module {@code m} of adapter {@code w}: the omitted term of entry i of a trainable. */
    ToDoubleBiFunction<LoraWeights.Trainable, Long> forModule(LoraWeights w, LoraWeights.Module m);
  }

  /** For gradients that leave nothing out. */
  static final Correction NO_CORRECTION = (w, m) -> (p, i) -> 0;

  private FusedStep(
      Transformer model, Batch batch, Workspace ws, FusedLora fused, List<LoraWeights> adapters) {
    this.model = model;
    this.batch = batch;
    this.ws = ws;
    this.fused = fused;
    this.adapters = adapters;
  }

  /**
   * The random 2-layer GQA Llama with q, k, v biases (seed 3) the gradient tests run on, written to
   * {@code dir} and loaded in double.
   */
  static ModelWeights randomBase(Path dir) {
    return CheckpointLoader.load(
        TestModels.writeRandom(dir, TestModels.config("LlamaForCausalLM", false, true), 3),
        DataType.DOUBLE);
  }

  /**
   * The plain LoRA every mixed gradient test puts beside its methods: rank 2, alpha 4, dropout 0.3
   * (so the input gradient goes through a mask), in double, with {@link #randomB}.
   */
  static LoraWeights plainLora(ModelWeights base, List<Projection> targets, long seed, Random rnd) {
    return randomB(
        LoraWeights.init(base, new LoraConfig(2, 4, 0.3, targets, false), seed, DataType.DOUBLE),
        rnd);
  }

  /** Assigns N(0, 0.3) to every B so that dA is nonzero. */
  static LoraWeights randomB(LoraWeights w, Random rnd) {
    for (LoraWeights.Module m : w.modules()) {
      m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
    }
    return w;
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
    return run(
        base,
        adapters,
        java.util.Collections.nCopies(adapters.size(), null),
        rnd,
        t,
        shortRow,
        slotSeed,
        step);
  }

  /** {@link #run} with adapter k on its frozen parent chain {@code chains.get(k)} (null: none). */
  static FusedStep run(
      ModelWeights base,
      List<LoraWeights> adapters,
      List<FrozenChain> chains,
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
      slots.add(
          new FusedLora.Slot(
              adapters.get(k), 2 * k * t, 2 * (k + 1) * t, slotSeed + k, chains.get(k)));
    }
    fused.bind(slots, true, step);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    adapters.forEach(LoraWeights::zeroGrad);
    model.backward(batch, fused, ws, stats);
    return new FusedStep(model, batch, ws, fused, adapters);
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

  /**
   * One random entry of every layer-0 trainable of every adapter (module by module, in {@link
   * LoraWeights#trainables} order), analytic gradient plus {@code correction} against a central
   * difference of Σ_k mean loss_k with step {@code eps}, within 1e-6 relative + 1e-8. Layer 0's
   * gradients flow back through every layer-1 branch's dx, so they check the whole backward pass.
   *
   * @param rnd picks the entries
   * @return how many entries were checked
   */
  int checkLayerZero(Random rnd, double eps, Correction correction) {
    int checked = 0;
    for (int k = 0; k < adapters.size(); k++) {
      LoraWeights w = adapters.get(k);
      for (LoraWeights.Module m : w.modules()) {
        if (m.layer() != 0) {
          continue;
        }
        List<LoraWeights.Trainable> params =
            w.trainables().stream().filter(p -> p.name().startsWith(m.name() + ".")).toList();
        ToDoubleBiFunction<LoraWeights.Trainable, Long> omitted = correction.forModule(w, m);
        for (LoraWeights.Trainable param : params) {
          long i = rnd.nextInt((int) param.value().length());
          double numeric = numeric(param.value(), i, eps);
          double analytic = param.grad().getDouble(i) + omitted.applyAsDouble(param, i);
          assertThat(analytic)
              .as(
                  "adapter %d (%s) %s [%d]: analytic %s vs numeric %s",
                  k, w.config().method().key(), param.name(), i, analytic, numeric)
              .isCloseTo(numeric, within(1e-6 * Math.max(1, Math.abs(numeric)) + 1e-8));
          checked++;
        }
      }
    }
    return checked;
  }
}
