/**
 * Serving-side RAM cache of loaded LoRA adapters on one frozen base, and where adapters load from.
 */
package io.loraspark.train.cache;
