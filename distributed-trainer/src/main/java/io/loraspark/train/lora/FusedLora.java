package io.loraspark.train.lora;

import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Gemm;
import io.loraspark.train.model.Projection;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

/**
 * K LoRA adapters in one fused batch (the mLoRA/ASPEN layout, Ye et al. 2023, arXiv:2312.02515):
 * the frozen projection has already run once over all N rows; adapter k adds {@code s_k · B_k(A_k
 * (dropout(x_k)))} to its own contiguous row range only, with its own rank, scaling and dropout
 * (each module's own s_k, {@link LoraWeights#scaling}). Plain LoRA and LoRA-FA (no dA) run inline;
 * a method whose {@link LoraVariant#ownsBranch} (DoRA, PiSSA) runs its own forward/backward on its
 * rows, so different methods share one fused step.
 *
 * <p>Order of calls: {@link #bind} once per step, then the {@link Adapters} forward/backward calls
 * the transformer makes. Buffers are kept per (adapter, module, row count) and reused across steps.
 * Dropout masks come from a seed derived from (adapter seed, step, layer, projection), so a step is
 * reproducible and resumable without saving random-number state.
 */
public final class FusedLora implements Adapters {

  /**
   * An adapter bound to token rows [rowStart, rowEnd) of the current batch, on top of its frozen
   * parent chain (null for a root adapter), which is applied to those rows first.
   */
  public record Slot(LoraWeights weights, int rowStart, int rowEnd, long seed, FrozenChain chain) {
    /** A root adapter's slot. */
    public Slot(LoraWeights weights, int rowStart, int rowEnd, long seed) {
      this(weights, rowStart, rowEnd, seed, null);
    }

    /** The adapter on every row of any batch (inference and evaluation). */
    public static Slot allRows(LoraWeights weights) {
      return allRows(weights, null);
    }

    /** The adapter on its chain (null for none) on every row of any batch. */
    public static Slot allRows(LoraWeights weights, FrozenChain chain) {
      return new Slot(weights, 0, Integer.MAX_VALUE, 0, chain);
    }
  }

  /** One adapter applied to every row, without dropout: for scoring and generation. */
  public static FusedLora inference(LoraWeights weights) {
    return inference(weights, null);
  }

  /** One adapter on its frozen parent chain (null for none), on every row, without dropout. */
  public static FusedLora inference(LoraWeights weights, FrozenChain chain) {
    FusedLora f = new FusedLora();
    f.bind(List.of(Slot.allRows(weights, chain)), false, 0);
    return f;
  }

  private final Gemm gemm; // the plain path's six products per module
  private List<Slot> slots = List.of();
  private boolean training;
  private long step;
  private final Map<BufferKey, INDArray> buffers = new HashMap<>();
  private final Map<INDArray, Map<Long, INDArray>> rowViews = new IdentityHashMap<>();

  /** Adapters whose plain LoRA products run ND4J's GEMMs. */
  public FusedLora() {
    this(Gemm.nd4j());
  }

  /** Adapters whose plain LoRA products run {@code gemm} (a model's {@code adapterGemm()}). */
  public FusedLora(Gemm gemm) {
    this.gemm = gemm;
  }

  /**
   * Binds the adapters of the next step to their rows.
   *
   * @param training whether dropout is active
   * @param step the global step, which selects the dropout masks
   */
  public void bind(List<Slot> slots, boolean training, long step) {
    this.slots = List.copyOf(slots);
    this.training = training;
    this.step = step;
  }

  @Override
  public void forward(int layer, Projection proj, INDArray x, INDArray y) {
    for (int k = 0; k < slots.size(); k++) {
      Slot slot = slots.get(k);
      if (slot.chain() != null) { // the parents first: W_0 x + b → W_chain x + b on the rows
        slot.chain().forward(layer, proj, rowsOf(x, slot), rowsOf(y, slot), chainScratch(k));
      }
      LoraWeights.Module m = slot.weights().module(layer, proj);
      if (m == null) {
        continue;
      }
      INDArray xk = rowsOf(x, slot);
      int rows = (int) xk.rows();
      double s = slot.weights().scaling(m);
      INDArray xd = droppedInput(k, slot, m, xk); // [Nk, in]
      LoraVariant variant = slot.weights().variant();
      if (variant.ownsBranch()) {
        variant.forward(m, s, xk, xd, rowsOf(y, slot), scratch(k, m));
        continue;
      }
      INDArray u = buffer("u", k, m, rows, m.a().rows()); // [Nk, r]
      gemm.gemm(xd, m.a(), u, false, true, 1.0, 0.0); // u = xd A^T
      gemm.gemm(u, m.b(), rowsOf(y, slot), false, true, s, 1.0); // y_k += s u B^T
    }
  }

  @Override
  public void backward(int layer, Projection proj, INDArray x, INDArray dy, INDArray dx) {
    for (int k = 0; k < slots.size(); k++) {
      Slot slot = slots.get(k);
      if (slot.chain() != null) { // through the frozen parents to x, into none of their factors
        slot.chain().backward(layer, proj, rowsOf(dy, slot), rowsOf(dx, slot), chainScratch(k));
      }
      LoraWeights.Module m = slot.weights().module(layer, proj);
      if (m == null) {
        continue;
      }
      INDArray dyk = rowsOf(dy, slot); // [Nk, out]
      int rows = (int) dyk.rows();
      double s = slot.weights().scaling(m);
      INDArray xd =
          dropoutActive(slot) ? buffer("xd", k, m, rows, m.a().columns()) : rowsOf(x, slot);
      INDArray dxk = rowsOf(dx, slot);
      LoraVariant variant = slot.weights().variant();
      if (variant.ownsBranch()) {
        variantBackward(variant, k, slot, m, rowsOf(x, slot), xd, dyk, dxk);
        continue;
      }
      INDArray u = buffer("u", k, m, rows, m.a().rows());
      gemm.gemm(dyk, u, m.gradB(), true, false, s, 1.0); // dB += s dy^T u
      INDArray g = buffer("g", k, m, rows, m.a().rows()); // [Nk, r]
      gemm.gemm(dyk, m.b(), g, false, false, 1.0, 0.0); // g = dy B
      if (m.gradA() != null) { // A trains (not LoRA-FA)
        gemm.gemm(g, xd, m.gradA(), true, false, s, 1.0); // dA += s g^T xd
      }
      if (dropoutActive(slot)) {
        INDArray t = buffer("dxd", k, m, rows, m.a().columns());
        gemm.gemm(g, m.a(), t, false, false, s, 0.0); // d(xd) = s g A
        dxk.addi(t.muli(buffer("mask", k, m, rows, m.a().columns())));
      } else {
        gemm.gemm(g, m.a(), dxk, false, false, s, 1.0); // dx += s g A
      }
    }
  }

  /** A variant's own backward; with dropout its input gradient is masked like the plain path's. */
  private void variantBackward(
      LoraVariant variant,
      int k,
      Slot slot,
      LoraWeights.Module m,
      INDArray xk,
      INDArray xd,
      INDArray dyk,
      INDArray dxk) {
    double s = slot.weights().scaling(m);
    if (!dropoutActive(slot)) {
      variant.backward(m, s, xk, xd, dyk, dxk, dxk, scratch(k, m));
      return;
    }
    int rows = (int) dyk.rows();
    INDArray dxd = buffer("dxd", k, m, rows, m.a().columns()).assign(0); // d(xd), [Nk, in]
    variant.backward(m, s, xk, xd, dyk, dxk, dxd, scratch(k, m));
    dxk.addi(dxd.muli(buffer("mask", k, m, rows, m.a().columns())));
  }

  private LoraVariant.Scratch scratch(int k, LoraWeights.Module m) {
    return (kind, rows, cols) -> buffer(kind, k, m, rows, cols);
  }

  /** Slot k's chain buffers, one set shared by its projections (used one projection at a time). */
  private LoraVariant.Scratch chainScratch(int k) {
    return (kind, rows, cols) ->
        buffers.computeIfAbsent(
            new BufferKey(kind, k, "chain", rows, cols),
            unused -> Nd4j.create(dataType(k), rows, cols));
  }

  private DataType dataType(int k) {
    return slots.get(k).weights().modules().iterator().next().a().dataType();
  }

  private boolean dropoutActive(Slot slot) {
    return training && slot.weights().config().dropout() > 0;
  }

  /**
   * x_k itself, or x_k * mask / (1 - p) with a fresh inverted-dropout mask (saved for backward).
   */
  private INDArray droppedInput(int k, Slot slot, LoraWeights.Module m, INDArray xk) {
    if (!dropoutActive(slot)) {
      return xk;
    }
    double p = slot.weights().config().dropout();
    int rows = (int) xk.rows();
    int cols = (int) xk.columns();
    SplittableRandom rnd =
        new SplittableRandom(
            slot.seed()
                ^ (step * 0x9E3779B97F4A7C15L)
                ^ ((long) m.layer() << 32)
                ^ m.proj().ordinal());
    INDArray maskBuf = buffer("mask", k, m, rows, cols);
    DropoutMask.of(maskBuf).fill(maskBuf, rnd, p);
    return buffer("xd", k, m, rows, cols).assign(xk).muli(maskBuf);
  }

  /**
   * The slot's rows of {@code a}: {@code a} itself, or a row-range view kept per (array, range), as
   * {@code INDArray.get} builds a new view each call and a K-adapter step asks for thousands.
   */
  private INDArray rowsOf(INDArray a, Slot slot) {
    if (slot.rowStart() == 0 && slot.rowEnd() >= a.rows()) {
      return a;
    }
    long range = ((long) slot.rowStart() << 32) | slot.rowEnd();
    return rowViews
        .computeIfAbsent(a, unused -> new HashMap<>())
        .computeIfAbsent(
            range,
            unused ->
                a.get(NDArrayIndex.interval(slot.rowStart(), slot.rowEnd()), NDArrayIndex.all()));
  }

  private INDArray buffer(String kind, int k, LoraWeights.Module m, long rows, long cols) {
    return buffers.computeIfAbsent(
        new BufferKey(kind, k, m.name(), rows, cols),
        unused -> Nd4j.create(m.a().dataType(), rows, cols));
  }

  private record BufferKey(String kind, int adapter, String module, long rows, long cols) {}
}
