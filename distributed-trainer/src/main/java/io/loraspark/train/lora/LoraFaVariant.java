package io.loraspark.train.lora;

/**
 * LoRA-FA (Zhang et al. 2023, "LoRA-FA: Memory-efficient Low-rank Adaptation for Large Language
 * Models Fine-tuning", arXiv:2308.03303): A stays frozen at its random (PEFT Kaiming-uniform)
 * initialisation and only B trains, so there is no dA, no gradient buffer and no optimizer state
 * for A, and the branch input need not be kept for a weight gradient of A. The forward pass and the
 * saved adapter are plain LoRA's, so the result loads in PEFT as an ordinary LoRA adapter.
 *
 * <p>PEFT's {@code create_lorafa_optimizer} (peft/optimizers/lorafa.py, the 2025 revision of the
 * paper) additionally preconditions B's gradient by {@code (A·Aᵀ)⁻¹/s²}; this class is the original
 * method, plain AdamW on B.
 */
final class LoraFaVariant implements LoraVariant {

  @Override
  public boolean trainsA() {
    return false;
  }

  @Override
  public LoraConfig exportConfig(LoraConfig c) {
    return c.withMethod(LoraMethod.LORA);
  }
}
