package io.loraspark.train.lora;

import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.BiFunction;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * An adapter directory with its recorded parent chain ({@link AdapterChain}), in the forms the
 * commands use: the frozen chain under the adapter for scoring ({@link #frozenChain}), the chain
 * folded into the base for {@code merge} ({@link #merged}), and, for an additive chain, the exact
 * PEFT {@code cat} of every node and the adapter ({@link #loraForms}, rank Σ r, weights 1) for
 * decoding and {@code export}. Each takes the chain its caller read once per load with {@link
 * AdapterChain#of} (which refuses, in one line naming both directories, a parent that changed since
 * the child was trained), so the chain a command checked is the chain it loads.
 */
public final class ChainedAdapters {
  private ChainedAdapters() {}

  /** The frozen parents {@code chain} names loaded on {@code base}, or null when it is a root's. */
  public static FrozenChain frozenChain(AdapterChain chain, ModelWeights base, DataType dt) {
    return chain.depth() == 0 ? null : FrozenChain.load(chain, base, dt);
  }

  /**
   * {@code base} with every node of {@code chain} (the chain of {@code dir}) and then the adapter
   * folded in, root first: {@code W ← merge(W, node)} node by node, so a DoRA node normalises the
   * weight the nodes above it made.
   *
   * @param load reads an adapter directory for a base (the node's or the child's)
   */
  public static ModelWeights merged(
      Path dir,
      AdapterChain chain,
      ModelWeights base,
      BiFunction<Path, ModelWeights, LoraWeights> load) {
    ModelWeights w = base;
    for (AdapterParent p : chain.nodes()) {
      w = LoraMerge.merged(w, load.apply(p.localDir(), w));
    }
    return LoraMerge.merged(w, load.apply(dir, w));
  }

  /**
   * {@code chain} (the chain of {@code dir}) and the adapter itself, root first, each in LoRA form.
   *
   * @throws IllegalArgumentException (one line) naming the first node whose method has no LoRA form
   *     (DoRA, an unconverted PiSSA) and saying that {@code merge} still works
   */
  public static List<LoraForm> loraForms(Path dir, AdapterChain chain, ModelConfig model) {
    List<Path> dirs = new ArrayList<>();
    chain.nodes().forEach(p -> dirs.add(p.localDir()));
    dirs.add(dir);
    for (Path d : dirs) {
      LoraMethod method = PeftAdapter.readConfig(d).method();
      if (!method.variant().additive()) {
        throw new IllegalArgumentException(
            "adapter "
                + dir
                + ": its chain has "
                + d
                + ", a "
                + method.key()
                + " adapter, which rescales or re-bases W instead of adding s·B·A, so the chain is"
                + " not one LoRA; `merge` folds it into the base, `score` applies it live");
      }
    }
    List<LoraForm> forms = new ArrayList<>();
    for (Path d : dirs) {
      forms.add(LoraForm.of(d.toString(), PeftAdapter.load(d, model, DataType.FLOAT)));
    }
    return forms;
  }

  /** The exact PEFT {@code cat} of {@link #loraForms}: one form of rank Σ r with scaling 1. */
  public static LoraForm catForm(Path dir, AdapterChain chain, ModelConfig model) {
    List<LoraForm> forms = loraForms(dir, chain, model);
    double[] ones = new double[forms.size()];
    Arrays.fill(ones, 1.0);
    return LoraFormWriter.concatenate(forms, ones);
  }

  /**
   * The adapter in {@code dir} as decoding loads it: as saved when it is a root, else its chain's
   * exact {@link #catForm} as one plain LoRA adapter.
   *
   * @param chain the chain of {@code dir} as its caller read it
   * @throws IllegalArgumentException (one line) for a chain with a node that has no LoRA form
   */
  public static LoraWeights forDecoding(Path dir, AdapterChain chain, ModelWeights base) {
    if (chain.depth() == 0) {
      return PeftAdapter.load(dir, base, DataType.FLOAT);
    }
    return LoraFormWriter.weights(catForm(dir, chain, base.config()));
  }
}
