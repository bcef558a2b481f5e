package io.loraspark.train.lora;

import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * A child adapter's frozen parent chain applied in the fused step: per projection, the chain's
 * effective weight {@code W_k} without a dense copy of it. Node i (root first) maps the weight
 * below it to {@code W_i = g_i ⊙ (W_{i−1} + s_i·B_i·A_i)}, with {@code g_i = 1} for an additive
 * node (LoRA, LoRA-FA, PiSSA and Delta-LoRA as saved, VeRA and AdaLoRA in their {@link LoraForm})
 * and, for a DoRA node, PEFT's {@code m_i / ‖W_{i−1} + s_i·B_i·A_i‖} per output row (dora.py's
 * {@code mag_norm_scale}, the norm taken once since nothing in the chain trains). Unrolled, with
 * {@code G_i = g_i·g_{i+1}·…·g_k}:
 *
 * <pre>
 *   y = G_1 ⊙ (W_0 x) + b + Σ_i G_i ⊙ (s_i·B_i·A_i x)          forward, on top of W_0 x + b
 *   dx = (G_1 ⊙ dy) W_0 + Σ_i s_i·((G_i ⊙ dy) B_i) A_i           backward
 * </pre>
 *
 * so each node is a {@link FrozenBranch} (scaled by G_i when a DoRA node is at or above it), and a
 * chain with a DoRA node also rescales the base output ({@code y ← G_1 ⊙ y + (1 − G_1) ⊙ b}) and
 * adds {@code ((G_1 − 1) ⊙ dy) W_0} to dx with the base model's own W_0. Nothing here trains: the
 * gradient reaches x, never a factor. Frozen parents run without dropout (PEFT's eval mode).
 *
 * <p>Immutable after {@link #of}; shared by every child of the same parent in a fused group.
 */
public final class FrozenChain {
  private final Map<String, Link> links; // by Hugging Face module name
  private final List<LoraForm> forms; // each node in LoRA form, root first; null for a DoRA node
  private final List<String> names;
  private final DataType dataType;

  /**
   * One projection's part of the chain.
   *
   * @param branches each node that adapts the projection, root first
   * @param baseScale G_1 [1, out], or null when no DoRA node adapts the projection
   * @param biasShift (1 − G_1) ⊙ b [1, out], or null without baseScale or bias
   * @param base W_0 [out, in] (the base model's array), or null without baseScale
   */
  private record Link(
      List<FrozenBranch> branches, INDArray baseScale, INDArray biasShift, INDArray base) {}

  private FrozenChain(
      Map<String, Link> links, List<LoraForm> forms, List<String> names, DataType dataType) {
    this.links = links;
    this.forms = forms;
    this.names = names;
    this.dataType = dataType;
  }

  /**
   * Loads the adapter directories of {@code chain} (root first) on {@code base}.
   *
   * @param dt the element type of the frozen factors (the engine's)
   * @throws IllegalArgumentException naming a directory that is not a valid adapter for the model,
   *     or a parent URI the engine cannot read in place (only local paths and {@code file:})
   */
  public static FrozenChain load(AdapterChain chain, ModelWeights base, DataType dt) {
    List<LoraWeights> nodes = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (AdapterParent p : chain.nodes()) {
      nodes.add(PeftAdapter.load(p.localDir(), base, dt));
      names.add(p.location());
    }
    return of(nodes, names, base, dt);
  }

  /**
   * The chain of {@code parent} (it and its recorded ancestors, each checked against its recorded
   * hash) loaded on {@code base}.
   */
  public static FrozenChain load(AdapterParent parent, ModelWeights base, DataType dt) {
    return load(AdapterChain.above(parent), base, dt);
  }

  /**
   * The chain alone as {@link Adapters} (no trained adapter on top, inference only): what a child
   * starts from, for its baseline eval loss.
   */
  public Adapters alone() {
    Map<String, INDArray> buffers = new HashMap<>();
    LoraVariant.Scratch scratch =
        (kind, rows, cols) ->
            buffers.computeIfAbsent(
                kind + rows + "x" + cols, k -> Nd4j.create(dataType, rows, cols));
    return new Adapters() {
      @Override
      public void forward(int layer, Projection proj, INDArray x, INDArray y) {
        FrozenChain.this.forward(layer, proj, x, y, scratch);
      }

      @Override
      public void backward(int layer, Projection proj, INDArray x, INDArray dy, INDArray dx) {
        FrozenChain.this.backward(layer, proj, dy, dx, scratch);
      }
    };
  }

  /**
   * The chain of loaded adapters {@code nodes}, root first.
   *
   * @param names each node's name for messages (its directory)
   */
  public static FrozenChain of(
      List<LoraWeights> nodes, List<String> names, ModelWeights base, DataType dt) {
    Map<String, List<Node>> byModule = new LinkedHashMap<>();
    List<LoraForm> forms = new ArrayList<>();
    for (int i = 0; i < nodes.size(); i++) {
      LoraWeights w = nodes.get(i);
      boolean dora = w.config().method() == LoraMethod.DORA;
      forms.add(dora ? null : LoraForm.of(names.get(i), w));
      for (LoraWeights.Module m : w.modules()) {
        byModule
            .computeIfAbsent(m.name(), k -> new ArrayList<>())
            .add(
                new Node(
                    LoraForm.factors(w, m), dora ? m.state(DoraState.class).magnitude() : null));
      }
    }
    Map<String, Link> links = new HashMap<>();
    byModule.forEach((name, list) -> links.put(name, link(list, base, dt)));
    return new FrozenChain(links, forms, List.copyOf(names), dt);
  }

  /** One node's pair on one projection, with DoRA's magnitude (null for an additive node). */
  private record Node(LoraForm.Factors f, INDArray magnitude) {}

  private static Link link(List<Node> nodes, ModelWeights base, DataType dt) {
    LoraForm.Factors first = nodes.get(0).f();
    int out = (int) first.b().rows();
    boolean dora = nodes.stream().anyMatch(n -> n.magnitude() != null);
    double[][] g = new double[nodes.size()][]; // g_i per node, null when additive
    if (dora) {
      INDArray w = weight(base, first, DataType.DOUBLE).dup(); // W_{i-1}, transient [out, in]
      for (int i = 0; i < nodes.size(); i++) {
        Node n = nodes.get(i);
        w.addi(n.f().delta()); // W_{i-1} + s B A
        if (n.magnitude() != null) {
          INDArray gi = n.magnitude().castTo(DataType.DOUBLE).div(w.norm2(1)); // m / ‖·‖
          w.muliColumnVector(gi.reshape(-1, 1));
          g[i] = gi.toDoubleVector();
        }
      }
    }
    double[] cumulative = ones(out); // G_i, built from the leaf down
    List<FrozenBranch> branches = new ArrayList<>();
    for (int i = nodes.size() - 1; i >= 0; i--) {
      multiply(cumulative, g[i]);
      LoraForm.Factors f = nodes.get(i).f();
      boolean scaled = dora && doraAtOrAfter(g, i);
      FrozenBranch br =
          new FrozenBranch(
              f.a().castTo(dt),
              f.scaledB().castTo(dt),
              scaled ? Nd4j.createFromArray(cumulative).castTo(dt) : null);
      br.switchOn(1.0);
      branches.add(0, br);
    }
    if (!dora) {
      return new Link(List.copyOf(branches), null, null, null);
    }
    INDArray baseScale = Nd4j.createFromArray(cumulative).castTo(dt).reshape(1, out);
    INDArray bias = ModelWeights.bias(base.layers().get(first.layer()), first.proj());
    INDArray shift =
        bias == null ? null : baseScale.rsub(1.0).muli(bias.castTo(dt).reshape(1, out));
    return new Link(List.copyOf(branches), baseScale, shift, weight(base, first, dt));
  }

  /** Whether a DoRA node sits at or after i (so G_i is not all ones). */
  private static boolean doraAtOrAfter(double[][] g, int i) {
    for (int j = i; j < g.length; j++) {
      if (g[j] != null) {
        return true;
      }
    }
    return false;
  }

  private static void multiply(double[] acc, double[] g) {
    if (g != null) {
      for (int o = 0; o < acc.length; o++) {
        acc[o] *= g[o];
      }
    }
  }

  private static double[] ones(int n) {
    double[] v = new double[n];
    java.util.Arrays.fill(v, 1.0);
    return v;
  }

  private static INDArray weight(ModelWeights base, LoraForm.Factors f, DataType dt) {
    return LoraWeights.frozenWeight(base, f.layer(), f.proj(), dt);
  }

  /**
   * Turns the base output {@code y} = W_0 x + b of projection (layer, proj) into the chain's: W_k x
   * + b. A no-op for a projection no node adapts.
   *
   * @param x the projection input rows, [N, in]
   * @param y the projection output rows, [N, out]; updated in place
   */
  public void forward(int layer, Projection proj, INDArray x, INDArray y, LoraVariant.Scratch s) {
    Link l = links.get(proj.hfModule(layer));
    if (l == null) {
      return;
    }
    if (l.baseScale() != null) {
      y.muliRowVector(l.baseScale()); // G_1 ⊙ (W_0 x + b)
      if (l.biasShift() != null) {
        y.addiRowVector(l.biasShift()); // + (1 − G_1) ⊙ b
      }
    }
    for (FrozenBranch br : l.branches()) {
      br.forward(x, y, 1.0, s); // + G_i ⊙ s_i B_i A_i x
    }
  }

  /**
   * Adds the chain's part of the input gradient to {@code dx}; the caller has already added the
   * base's {@code dy W_0}.
   *
   * @param dy dLoss/dy rows, [N, out]
   * @param dx dLoss/dx rows, [N, in]; accumulated in place
   */
  public void backward(
      int layer, Projection proj, INDArray dy, INDArray dx, LoraVariant.Scratch s) {
    Link l = links.get(proj.hfModule(layer));
    if (l == null) {
      return;
    }
    for (FrozenBranch br : l.branches()) {
      br.backward(dy, dx, 1.0, s); // + s_i ((G_i ⊙ dy) B_i) A_i
    }
    if (l.baseScale() != null) {
      INDArray t = s.get("chain_dy", dy.rows(), dy.columns()).assign(dy); // [N, out]
      t.muliRowVector(l.baseScale()).subi(dy); // (G_1 − 1) ⊙ dy
      Nd4j.gemm(t, l.base(), dx, false, false, 1.0, 1.0); // dx += ((G_1 − 1) ⊙ dy) W_0
    }
  }

  /** Whether every node is additive, so the chain has an exact LoRA form. */
  public boolean additive() {
    return forms.stream().allMatch(f -> f != null);
  }

  /**
   * Each node in LoRA form, root first.
   *
   * @throws IllegalArgumentException (one line) naming the DoRA node when the chain has one
   */
  public List<LoraForm> loraForms() {
    for (int i = 0; i < forms.size(); i++) {
      if (forms.get(i) == null) {
        throw new IllegalArgumentException(
            "parent "
                + names.get(i)
                + " is dora, which rescales W instead of adding s·B·A, so its chain has no LoRA"
                + " form; `merge` still folds the chain into the base");
      }
    }
    return forms;
  }

  /** How many nodes. */
  public int depth() {
    return names.size();
  }
}
