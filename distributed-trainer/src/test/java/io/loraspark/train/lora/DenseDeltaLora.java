package io.loraspark.train.lora;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import io.loraspark.train.optim.AdamW;
import io.loraspark.train.optim.AdamWConfig;
import io.loraspark.train.optim.GradClip;
import io.loraspark.train.optim.LrSchedule;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The dense form of Delta-LoRA that the low-rank form replaced, kept as a test reference: per
 * module a plain LoRA's A and B plus a dense ΔW [out, in]; the branch is {@code y += x (ΔW +
 * s·B·A)ᵀ} with the sum built densely, A and B get their gradients from the dense dLoss/d(BA) = dyᵀ
 * x, and after the update of every step t ≥ K, {@code ΔW += λ·(s B'A' − s BA)} in scalar loops (the
 * paper's Algorithm 1, one step earlier as the engine schedules it). {@link #train} runs it on the
 * whole of {@code rows} every step with the engine's AdamW, clipping and schedule, in double.
 */
final class DenseDeltaLora implements Adapters {
  private final LoraWeights w; // a plain LoRA's A, B and gradients
  private final Map<String, double[][]> delta = new HashMap<>(); // ΔW by module name
  private final Map<String, INDArray> deltaArrays = new HashMap<>(); // the same, as arrays

  private DenseDeltaLora(LoraWeights w) {
    this.w = w;
    for (LoraWeights.Module m : w.modules()) {
      delta.put(m.name(), new double[(int) m.b().rows()][(int) m.a().columns()]);
      deltaArrays.put(m.name(), Nd4j.createFromArray(delta.get(m.name())));
    }
  }

  /** ΔW + s·B·A of module m, [out, in], in double. */
  private INDArray effective(LoraWeights.Module m) {
    return m.b().mmul(m.a()).muli(w.scaling(m)).addi(deltaArrays.get(m.name()));
  }

  @Override
  public void forward(int layer, Projection proj, INDArray x, INDArray y) {
    LoraWeights.Module m = w.module(layer, proj);
    if (m != null) {
      y.addi(x.mmul(effective(m).transpose())); // y += x (ΔW + sBA)^T
    }
  }

  @Override
  public void backward(int layer, Projection proj, INDArray x, INDArray dy, INDArray dx) {
    LoraWeights.Module m = w.module(layer, proj);
    if (m == null) {
      return;
    }
    double s = w.scaling(m);
    INDArray dM = dy.transpose().mmul(x); // dLoss/d(BA) / s, [out, in]
    m.gradB().addi(dM.mmul(m.a().transpose()).muli(s)); // dB = s dM A^T
    m.gradA().addi(m.b().transpose().mmul(dM).muli(s)); // dA = s B^T dM
    dx.addi(dy.mmul(effective(m))); // dx = dy (ΔW + sBA)
  }

  /** ΔW += λ·s·(B'A' − BA), in scalar loops. */
  private void moveDelta(Map<String, double[][]> before, double lambda) {
    for (LoraWeights.Module m : w.modules()) {
      double[][] ba = before.get(m.name());
      double[][] now = product(m);
      double[][] d = delta.get(m.name());
      double k = lambda * w.scaling(m);
      for (int o = 0; o < d.length; o++) {
        for (int i = 0; i < d[0].length; i++) {
          d[o][i] += k * (now[o][i] - ba[o][i]);
        }
      }
      deltaArrays.put(m.name(), Nd4j.createFromArray(d));
    }
  }

  private static double[][] product(LoraWeights.Module m) {
    double[][] a = m.a().toDoubleMatrix();
    double[][] b = m.b().toDoubleMatrix();
    double[][] p = new double[b.length][a[0].length];
    for (int o = 0; o < b.length; o++) {
      for (int i = 0; i < a[0].length; i++) {
        for (int r = 0; r < a.length; r++) {
          p[o][i] += b[o][r] * a[r][i];
        }
      }
    }
    return p;
  }

  /**
   * What a dense run gives.
   *
   * @param losses the mean training loss of each step, before its update
   * @param maxDelta the largest |ΔW| entry at the end
   */
  record Run(double[] losses, double maxDelta) {}

  /**
   * Trains {@code spec}'s adapter (its λ and K; batch size = all rows) in the dense form on every
   * row each step.
   */
  static Run train(Transformer model, AdapterSpec spec, List<TokenRow> rows) {
    TrainConfig t = spec.train();
    DeltaLoraParams p = spec.lora().deltaLora();
    LoraConfig plain = spec.lora().withMethod(LoraMethod.LORA);
    LoraWeights w = LoraWeights.init(model.weights(), plain, t.seed(), DataType.DOUBLE);
    DenseDeltaLora dense = new DenseDeltaLora(w);
    AdamW opt =
        new AdamW(
            new AdamWConfig(t.lr(), 0.9, 0.999, 1e-8, t.weightDecay(), t.lrRatio()),
            AdamW.loraParams(w, t.lrRatio()));
    LrSchedule schedule = new LrSchedule(t.schedule(), t.lr(), t.warmupSteps(), t.steps(), 0.0);
    Batch batch = Batch.of(rows, 0, new int[rows.size()], 1, 0);
    Workspace ws = model.newWorkspace(batch.rows(), batch.seqLen());
    double[] losses = new double[t.steps()];
    for (int step = 0; step < t.steps(); step++) {
      model.forward(batch, dense, ws);
      LossStats stats = model.loss(batch, ws);
      losses[step] = stats.mean(0);
      w.zeroGrad();
      model.backward(batch, dense, ws, stats);
      List<INDArray> grads = new ArrayList<>();
      w.trainables().forEach(g -> grads.add(g.grad()));
      GradClip.clipByGlobalNorm(grads, t.maxGradNorm());
      Map<String, double[][]> before = new HashMap<>();
      w.modules().forEach(m -> before.put(m.name(), product(m)));
      opt.step(schedule.lr(step));
      if (step >= p.startStep(t.steps())) {
        dense.moveDelta(before, p.updateRatio());
      }
    }
    double max = 0;
    for (double[][] d : dense.delta.values()) {
      for (double[] row : d) {
        for (double v : row) {
          max = Math.max(max, Math.abs(v));
        }
      }
    }
    return new Run(losses, max);
  }
}
