package io.loraspark.train.lora;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * How one member of the LoRA family differs from plain LoRA (PEFT's {@code LoraVariant} in {@code
 * peft/tuners/lora/variants.py}, without its if/elif init chain): which factors train, what extra
 * per-module state it keeps ({@link #newState}: one {@link ModuleState} record per method), and,
 * when its branch is not {@code y += s·B·A·x}, its own forward/backward pair, what it saves under
 * which PEFT keys, how it merges and how much memory it needs. Variants are stateless singletons;
 * all state lives in {@link LoraWeights.Module}. Plain LoRA is {@link #PLAIN}: every default, and
 * {@link FusedLora} runs its branch inline.
 *
 * <p>Order of calls: {@link #init} once per module when the weights are made; then per micro-step,
 * for a variant that {@link #ownsBranch}, {@link #forward} then {@link #backward} with the same
 * {@code xd} and scratch; per optimizer step {@link #beforeOptimizerStep} (gradients averaged, not
 * yet clipped), the update, then {@link #afterOptimizerStep} (gradients still held); {@link
 * #merged} for export to a dense checkpoint.
 */
public interface LoraVariant {

  /** Plain LoRA: A and B train, the branch is {@code s·B·A·x}. */
  LoraVariant PLAIN = new LoraVariant() {};

  /**
   * Scratch arrays kept by the caller per (adapter, module, kind, shape) and reused across steps.
   */
  interface Scratch {
    /** A buffer of this shape in the adapter's dtype; contents are whatever the last user left. */
    INDArray get(String kind, long rows, long cols);
  }

  /** Whether A is trained: when false it has no gradient and no optimizer state. */
  default boolean trainsA() {
    return true;
  }

  /** Whether B is trained: when false (VeRA's frozen shared B) it has no gradient either. */
  default boolean trainsB() {
    return true;
  }

  /**
   * The rank of the module's A [r, in] and B [out, r] for an adapter of rank {@code rank}: the rank
   * itself, or AdaLoRA's initial rank (its {@code rank} is the target it prunes down to).
   */
  default int moduleRank(int rank) {
    return rank;
  }

  /**
   * Whether modules of one adapter may have their own rank and alpha (PEFT's rank_pattern and
   * alpha_pattern): true when a module's state depends only on its own A [r_m, in] and B [out, r_m]
   * and the scaling it is given; false for a variant with one rank or scaling across the adapter
   * (VeRA's shared matrices, AdaLoRA's budget, PiSSA's rank-2r export).
   */
  default boolean perModuleRank() {
    return true;
  }

  /**
   * The scaling s of the branch: alpha / r, or alpha / √r with rsLoRA (Kalajdzievski 2023); a
   * variant with its own rule (AdaLoRA's alpha / init_r, VeRA's none) overrides it.
   */
  default double scaling(int rank, double alpha, boolean rsLora) {
    return rsLora ? alpha / Math.sqrt(rank) : alpha / rank;
  }

  /**
   * The method's own state of one module, all zero ({@link #init} or a loader fills it): {@link
   * ModuleState#NONE} for plain LoRA.
   */
  default ModuleState newState(ModuleState.Shape shape) {
    return ModuleState.NONE;
  }

  /**
   * The adapter's frozen tensors shared by every module, by PEFT name after {@code base_model.}
   * (VeRA's vera_A [r, in_max], vera_B [out_max, r]), or an empty map for a method whose modules
   * own their A and B.
   *
   * @param r the {@link #moduleRank}
   * @param inMax the widest input of the adapted projections
   * @param outMax the widest output of the adapted projections
   * @param seed the adapter's seed for their init, or null for all zero (to be loaded)
   */
  default Map<String, INDArray> newShared(int r, int inMax, int outMax, DataType dt, Long seed) {
    return Map.of();
  }

  /**
   * A module's A [r, in] and B [out, r], all zero: new arrays, or views of the adapter's {@link
   * #newShared} tensors (whose A is then not drawn per module).
   */
  default INDArray[] newFactors(Map<String, INDArray> shared, int r, int in, int out, DataType dt) {
    return new INDArray[] {Nd4j.create(dt, r, in), Nd4j.create(dt, out, r)};
  }

  /** The adapter's rank allocator that prunes its ranks while training (AdaLoRA), or null. */
  default RankAllocator newAllocator() {
    return null;
  }

  /**
   * Whether the module needs the frozen weight W, handed to {@link #newState} through {@link
   * ModuleState.Shape#base}.
   */
  default boolean needsBase() {
    return false;
  }

  /**
   * The bytes of training state one module of rank {@code r} on an [out, in] projection holds on an
   * executor, for memory plans: A, B, their gradients and AdamW's two moments in fp32, 16 bytes per
   * factor entry, plus what the method keeps beside them. An estimate at the factors' size (the
   * methods' vectors, a few hundred entries, are not counted; a copy of W is the plan's).
   */
  default long stateBytes(int r, int in, int out) {
    return 16L * r * (in + out);
  }

  /** Whether {@link #forward}/{@link #backward} replace the plain branch. */
  default boolean ownsBranch() {
    return false;
  }

  /**
   * Sets the variant's extra state of a module whose A and B are already initialised.
   *
   * @param s the module's scaling ({@link LoraWeights#scaling})
   */
  default void init(LoraWeights.Module m, double s) {}

  /**
   * {@link #init(LoraWeights.Module, double)} for a variant whose init draws random numbers
   * (AdaLoRA's normal A and B) from the adapter's own stream, so the same seed gives the same
   * weights.
   */
  default void init(LoraWeights.Module m, double s, SplittableRandom rnd) {
    init(m, s);
  }

  /**
   * Called once per optimizer step of an adapter of this method, after its gradients are summed
   * over the step's micro-batches and averaged, before clipping and the update: adds gradient terms
   * that are not part of the data loss (AdaLoRA's orthogonality regulariser), or keeps what the
   * update will change (Delta-LoRA's snapshot of A and B at step K).
   *
   * @param step the optimizer steps taken before this one (0 for the first), PEFT's global_step
   * @param totalSteps the adapter's whole step count (PEFT's total_step)
   */
  default void beforeOptimizerStep(LoraWeights w, long step, int totalSteps) {}

  /**
   * Called once per optimizer step after the update, while the step's (clipped) gradients are still
   * held: PEFT's {@code update_and_allocate} slot (AdaLoRA's importance scores and rank masking;
   * Delta-LoRA's switch to W_K + λ·s·(BA − B_K A_K) once step K is taken).
   *
   * @param step the optimizer steps taken before this one (0 for the first), PEFT's global_step
   * @param totalSteps the adapter's whole step count (PEFT's total_step)
   */
  default void afterOptimizerStep(LoraWeights w, long step, int totalSteps) {}

  /**
   * Called once after a checkpoint has restored {@code w}'s saved state, before training goes on:
   * sets what follows from the step count alone (Delta-LoRA's snapshot branch is on after step K).
   *
   * @param stepsTaken the optimizer steps the checkpoint had taken
   * @param totalSteps the adapter's whole step count
   */
  default void restored(LoraWeights w, long stepsTaken, int totalSteps) {}

  /**
   * Adds the branch output to {@code y}.
   *
   * @param x the projection input rows of this adapter, [N, in]
   * @param xd {@code x} after the adapter's dropout ({@code x} itself when dropout is off), [N, in]
   * @param y the projection output rows of this adapter, [N, out]; updated in place
   */
  default void forward(
      LoraWeights.Module m, double s, INDArray x, INDArray xd, INDArray y, Scratch scratch) {
    throw new UnsupportedOperationException("the plain branch runs inline in FusedLora");
  }

  /**
   * Accumulates the module's parameter gradients and the branch's input gradients.
   *
   * @param dy dLoss/dy for this adapter's rows, [N, out]
   * @param dx dLoss/dx, accumulated in place, [N, in]
   * @param dxd dLoss/dxd, accumulated in place, [N, in]; the caller applies the dropout mask and
   *     adds it to dx (the same array as {@code dx} when dropout is off)
   */
  default void backward(
      LoraWeights.Module m,
      double s,
      INDArray x,
      INDArray xd,
      INDArray dy,
      INDArray dx,
      INDArray dxd,
      Scratch scratch) {
    throw new UnsupportedOperationException("the plain branch runs inline in FusedLora");
  }

  /**
   * The {@code peft_type} a config of this method is written with, which picks its {@link
   * PeftCodec} (so also how a file of that type is read back): PEFT's {@code LORA} by default.
   */
  default String peftType() {
    return PeftAdapterConfig.PEFT_TYPE;
  }

  /**
   * The config of the PEFT adapter this variant saves as (its own for LoRA and DoRA; plain LoRA for
   * LoRA-FA; PiSSA's converted rank-2r LoRA).
   */
  default LoraConfig exportConfig(LoraConfig c) {
    return c;
  }

  /**
   * The config a checkpoint saves the adapter's training state under: {@link #exportConfig} unless
   * the export cannot be read back exactly (Delta-LoRA's rank-2r LoRA with λ folded into B, whose
   * checkpoints keep its own {@code DELTA_LORA} state with λ and K).
   */
  default LoraConfig stateConfig(LoraConfig c) {
    return exportConfig(c);
  }

  /**
   * The module's tensors as a checkpoint saves them, read back into these arrays on resume (then
   * {@link #importTensors}); {@link #peftTensors} unless {@link #stateConfig} differs from the
   * export.
   */
  default Map<String, INDArray> stateTensors(LoraWeights w, LoraWeights.Module m) {
    return peftTensors(w, m);
  }

  /**
   * The module's {A, B} as saved: arrays of the {@link #exportConfig} rank. Plain LoRA saves (and
   * loads straight into) its own A and B; a variant that returns other arrays must turn them back
   * into module state in {@link #importFactors}.
   */
  default INDArray[] exportFactors(LoraWeights.Module m) {
    return new INDArray[] {m.a(), m.b()};
  }

  /**
   * Sets the module from saved factors read into the arrays {@link #exportFactors} returned (a
   * no-op when those are the module's own).
   */
  default void importFactors(LoraWeights.Module m, INDArray[] saved) {}

  /**
   * The module's tensors as PEFT's state dict holds them, by name after {@code
   * base_model.model.<module>.}, in save order; a loader reads the saved values into these arrays
   * and then calls {@link #importTensors}. Default: {@code lora_A.weight} and {@code lora_B.weight}
   * from {@link #exportFactors}.
   */
  default Map<String, INDArray> peftTensors(LoraWeights w, LoraWeights.Module m) {
    INDArray[] factors = exportFactors(m);
    Map<String, INDArray> t = new LinkedHashMap<>();
    t.put("lora_A.weight", factors[0]);
    t.put("lora_B.weight", factors[1]);
    return t;
  }

  /** Sets the module from the arrays {@link #peftTensors} returned, after a loader filled them. */
  default void importTensors(LoraWeights w, LoraWeights.Module m, Map<String, INDArray> read) {
    importFactors(m, new INDArray[] {read.get("lora_A.weight"), read.get("lora_B.weight")});
  }

  /**
   * Module {@code m}'s update as one plain pair with {@code ΔW = s'·B'·A'} exactly, every
   * method-specific factor folded in, in double ({@link LoraForm}): the {@link #exportFactors} with
   * the module's scaling by default.
   *
   * @param s the module's scaling ({@link LoraWeights#scaling})
   */
  default LoraForm.Factors loraFactors(LoraWeights.Module m, double s) {
    INDArray[] f = exportFactors(m);
    return new LoraForm.Factors(
        m.layer(),
        m.proj(),
        f[0].castTo(DataType.DOUBLE).dup(),
        f[1].castTo(DataType.DOUBLE).dup(),
        s);
  }

  /**
   * Whether the update is an addition to W that other adapters' updates add to ({@link
   * #loraFactors} is all of it): false for DoRA (it rescales W) and PiSSA held in memory (it
   * re-bases W; its saved form is plain LoRA), which compose with nothing.
   */
  default boolean additive() {
    return true;
  }

  /**
   * The merged weight W' that makes the plain linear layer compute what W plus this branch
   * computes: {@code W + s'·B'·A'} from {@link #loraFactors} by default ({@code W + s·B·A} for
   * plain LoRA).
   *
   * @param w the frozen weight [out, in], in double
   * @return a new double array [out, in]
   */
  default INDArray merged(LoraWeights.Module m, double s, INDArray w) {
    LoraForm.Factors f = loraFactors(m, s);
    return f.b().mmul(f.a()).muli(f.scaling()).addi(w);
  }
}
