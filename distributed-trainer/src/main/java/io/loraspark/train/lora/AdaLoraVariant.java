package io.loraspark.train.lora;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * AdaLoRA (Zhang et al. 2023, "AdaLoRA: Adaptive Budget Allocation for Parameter-Efficient
 * Fine-Tuning", arXiv:2303.10512): the update in SVD form {@code Δ = P Λ Q}, with P = B [out, r], Λ
 * = diag(E), E [r, 1], Q = A [r, in], trained with an orthogonality regulariser on P and Q, while a
 * {@link RankAllocator} zeroes the singular values of the least important triplets so the adapter's
 * total rank falls from init_r per module to the target budget on a cubic schedule.
 *
 * <p>Followed: PEFT's {@code SVDLinear}/{@code AdaLoraModel} (peft/tuners/adalora): the branch
 * {@code y += (dropout(x) (A ⊙ E)ᵀ Bᵀ) · lora_alpha / (ranknum + 1e-5)} with ranknum = init_r fixed
 * for the adapter's life (pruning masks E, it never changes the scaling); E starts at zero and A, B
 * at N(0, 0.02²); the loss gains {@code orth_reg_weight / n · Σ ‖P Pᵀ − I‖_F} over the n =
 * 2·modules matrices (A Aᵀ for each A, Bᵀ B for each B), orth_reg_weight 0.5; {@code
 * update_and_allocate(global_step)} after every optimizer step. The adapter's {@code rank} is
 * PEFT's {@code target_r}; its init_r is {@code ⌈1.5 · target_r⌉}, PEFT's default pair (init_r 12,
 * target_r 8) scaled. rsLoRA does not apply (PEFT's AdaLoRA layer sets its own scaling). Saved as
 * PEFT does: {@code base_model.model.<module>.lora_A} [k, in], {@code .lora_E} [k, 1], {@code
 * .lora_B} [out, k] (no {@code .weight}), truncated to each module's k kept ranks once a rank
 * pattern exists, with {@code rank_pattern} and {@code total_step} in adapter_config.json.
 */
final class AdaLoraVariant implements LoraVariant {

  /** PEFT's AdaLoraConfig.init_r / target_r defaults, 12 / 8. */
  private static final double INIT_OVER_TARGET = 12.0 / 8.0;

  /** PEFT's AdaLoraConfig.orth_reg_weight default. */
  static final double ORTH_REG_WEIGHT = 0.5;

  /** The std of PEFT's normal init of A and B. */
  private static final double INIT_STD = 0.02;

  /** init_r for an adapter whose target_r is {@code targetRank}. */
  static int initRank(int targetRank) {
    return (int) Math.ceil(INIT_OVER_TARGET * targetRank);
  }

  /**
   * One rank and scaling for the adapter: its rank_pattern is the allocator's, and PEFT's AdaLoRA
   * ignores alpha_pattern.
   */
  @Override
  public boolean perModuleRank() {
    return false;
  }

  @Override
  public int moduleRank(int rank) {
    return initRank(rank);
  }

  /** PEFT: {@code scaling = lora_alpha} and the branch divides by {@code ranknum + 1e-5}. */
  @Override
  public double scaling(int rank, double alpha, boolean rsLora) {
    return alpha / (initRank(rank) + 1e-5);
  }

  @Override
  public String peftType() {
    return PeftAdapterConfig.ADALORA_TYPE;
  }

  @Override
  public boolean ownsBranch() {
    return true;
  }

  @Override
  public ModuleState newState(ModuleState.Shape shape) {
    return new AdaLoraState(
        Nd4j.create(shape.dt(), shape.r(), 1), Nd4j.create(shape.dt(), shape.r(), 1));
  }

  @Override
  public RankAllocator newAllocator() {
    return new RankAllocator();
  }

  /** Plain LoRA's state plus three importance EMAs per factor entry (12 bytes more). */
  @Override
  public long stateBytes(int r, int in, int out) {
    return 28L * r * (in + out);
  }

  @Override
  public void init(LoraWeights.Module m, double s, SplittableRandom rnd) {
    normal(m.a(), rnd);
    normal(m.b(), rnd);
    m.state(AdaLoraState.class).e().assign(0);
  }

  private static void normal(INDArray t, SplittableRandom rnd) {
    double[] v = new double[(int) t.length()];
    for (int i = 0; i < v.length; i++) {
      v[i] = rnd.nextGaussian() * INIT_STD;
    }
    t.assign(Nd4j.createFromArray(v).reshape(t.shape()).castTo(t.dataType()));
  }

  @Override
  public void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    long n = xd.rows();
    long r = m.a().rows();
    INDArray e = m.state(AdaLoraState.class).e().reshape(1, r); // [1, r]
    INDArray u = scratch.get("u", n, r); // [N, r]
    Nd4j.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
    INDArray ue = scratch.get("ue", n, r).assign(u).muliRowVector(e); // ue = E ⊙ u
    Nd4j.gemm(ue, m.b(), y, false, true, s, 1.0); // y += s ue B^T
  }

  @Override
  public void backward(
      LoraWeights.Module m,
      double s,
      INDArray x,
      INDArray xd,
      INDArray dy,
      INDArray dx,
      INDArray dxd,
      Scratch scratch) {
    AdaLoraState state = m.state(AdaLoraState.class);
    long n = xd.rows();
    long r = m.a().rows();
    INDArray e = state.e().reshape(1, r);
    INDArray u = scratch.get("u", n, r);
    INDArray ue = scratch.get("ue", n, r);
    Nd4j.gemm(dy, ue, m.gradB(), true, false, s, 1.0); // dB += s dy^T ue
    INDArray g = scratch.get("g", n, r); // [N, r]
    Nd4j.gemm(dy, m.b(), g, false, false, s, 0.0); // g = s dy B = d(ue)
    INDArray gu = ue.assign(g).muli(u); // g ⊙ u (ue is no longer needed)
    state.gradE().addi(gu.sum(0).reshape(r, 1)); // dE += Σ_n g ⊙ u
    g.muliRowVector(e); // du = E ⊙ g
    Nd4j.gemm(g, xd, m.gradA(), true, false, 1.0, 1.0); // dA += du^T xd
    Nd4j.gemm(g, m.a(), dxd, false, false, 1.0, 1.0); // dxd += du A
  }

  /**
   * Adds the gradient of PEFT's orthogonality regulariser {@code w/n · Σ ‖M − I‖_F}, M = A Aᵀ per A
   * and Bᵀ B per B, n the number of such matrices: {@code 2 (M − I) A / ‖M − I‖_F} for A and {@code
   * 2 B (M − I) / ‖M − I‖_F} for B, times w/n (a zero norm adds nothing).
   */
  @Override
  public void beforeOptimizerStep(LoraWeights w, long step, int totalSteps) {
    double c = 2 * ORTH_REG_WEIGHT / (2.0 * w.modules().size());
    for (LoraWeights.Module m : w.modules()) {
      INDArray ma = m.a().mmul(m.a().transpose()); // A A^T, [r, r]
      addOrthGradient(m.gradA(), ma, m.a(), c, true);
      INDArray mb = m.b().transpose().mmul(m.b()); // B^T B, [r, r]
      addOrthGradient(m.gradB(), mb, m.b(), c, false);
    }
  }

  private static void addOrthGradient(
      INDArray grad, INDArray gram, INDArray p, double c, boolean left) {
    INDArray dev = gram.subi(Nd4j.eye(gram.rows()).castTo(gram.dataType())); // M - I
    double norm = dev.norm2Number().doubleValue(); // Frobenius
    if (norm == 0) {
      return;
    }
    INDArray g = left ? dev.mmul(p) : p.mmul(dev); // (M - I) A  or  B (M - I)
    grad.addi(g.muli(c / norm));
  }

  /** PEFT's {@code update_and_allocate(global_step)}: importance scores and rank masking. */
  @Override
  public void afterOptimizerStep(LoraWeights w, long step, int totalSteps) {
    w.allocator().updateAndAllocate(w, step, totalSteps);
  }

  /** {@code A' = diag(E) A}, B, with the module's scaling; merged as {@code W + s·B diag(E) A}. */
  @Override
  public LoraForm.Factors loraFactors(LoraWeights.Module m, double s) {
    INDArray e = m.state(AdaLoraState.class).e().castTo(DataType.DOUBLE); // [r, 1]
    INDArray a = m.a().castTo(DataType.DOUBLE).mulColumnVector(e);
    return new LoraForm.Factors(m.layer(), m.proj(), a, m.b().castTo(DataType.DOUBLE).dup(), s);
  }

  /** rsLoRA does not apply to AdaLoRA (PEFT ignores {@code use_rslora} for it). */
  @Override
  public LoraConfig exportConfig(LoraConfig c) {
    return new LoraConfig(
        c.rank(), c.alpha(), c.dropout(), c.targets(), false, c.method(), c.selection());
  }

  /**
   * A, E, B as saved: the module's own arrays before any rank pattern exists, then copies of the
   * kept rows of A and E and columns of B (PEFT's {@code resize_state_dict_by_rank_pattern}).
   */
  @Override
  public Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    INDArray e = m.state(AdaLoraState.class).e();
    Map<String, INDArray> t = new LinkedHashMap<>();
    boolean[] kept = w.allocator().kept(m.name());
    if (kept == null || allTrue(kept)) {
      t.put("lora_A", m.a());
      t.put("lora_B", m.b());
      t.put(AdaLoraState.E, e);
      return t;
    }
    long[] rows = indices(kept);
    if (rows.length == 0) {
      t.put("lora_A", Nd4j.create(m.a().dataType(), 0, m.a().columns()));
      t.put("lora_B", Nd4j.create(m.b().dataType(), m.b().rows(), 0));
      t.put(AdaLoraState.E, Nd4j.create(e.dataType(), 0, 1));
      return t;
    }
    t.put("lora_A", m.a().get(NDArrayIndex.indices(rows), NDArrayIndex.all()).dup());
    t.put("lora_B", m.b().get(NDArrayIndex.all(), NDArrayIndex.indices(rows)).dup());
    t.put(AdaLoraState.E, e.get(NDArrayIndex.indices(rows), NDArrayIndex.all()).dup());
    return t;
  }

  /** Scatters truncated saved tensors back to the kept ranks; the masked ranks stay zero. */
  @Override
  public void importTensors(LoraWeights w, LoraWeights.Module m, Map<String, INDArray> read) {
    boolean[] kept = w.allocator().kept(m.name());
    if (kept == null || allTrue(kept)) {
      return; // read straight into the module's arrays
    }
    INDArray e = m.state(AdaLoraState.class).e();
    m.a().assign(0);
    m.b().assign(0);
    e.assign(0);
    int j = 0;
    for (int i = 0; i < kept.length; i++) {
      if (kept[i]) {
        m.a().getRow(i).assign(read.get("lora_A").getRow(j));
        m.b().getColumn(i).assign(read.get("lora_B").getColumn(j));
        e.putScalar(i, 0, read.get(AdaLoraState.E).getDouble(j, 0));
        j++;
      }
    }
  }

  private static boolean allTrue(boolean[] kept) {
    for (boolean k : kept) {
      if (!k) {
        return false;
      }
    }
    return true;
  }

  private static long[] indices(boolean[] kept) {
    return java.util.stream.IntStream.range(0, kept.length)
        .filter(i -> kept[i])
        .mapToLong(i -> i)
        .toArray();
  }
}
