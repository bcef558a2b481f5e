/** Optimisation: AdamW with LoRA+ parameter groups, global-norm gradient clipping, LR schedules. */
package io.loraspark.train.optim;
