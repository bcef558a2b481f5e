/**
 * Using adapters: KV-cached incremental decoding of many requests at once, each row with its own
 * adapter mix, position and cache; sampling; the request scheduler (continuous batching).
 *
 * <p>Dimension glossary: R rows of one decode step (token positions of any requests), C hidden, F
 * ffn, V vocabulary, NH/NKV query/kv heads, HD head dim, r an adapter module's rank, P a position.
 */
package io.loraspark.train.decode;
