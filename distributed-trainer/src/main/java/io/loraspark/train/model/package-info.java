/**
 * The frozen base model: Hugging Face checkpoint loading and the ND4J forward/backward pass.
 *
 * <p>Dimension glossary used in shape comments: B batch rows (sequences), T sequence length, N =
 * B*T token rows, C hidden size, F ffn size, V vocabulary, NH query heads, NKV key/value heads, G =
 * NH/NKV queries per kv head, HD head dim, X = B*NKV attention groups.
 */
package io.loraspark.train.model;
