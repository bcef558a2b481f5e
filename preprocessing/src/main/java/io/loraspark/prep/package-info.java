/** Spark job turning instruction data into tokenized, masked, split Parquet shards. */
package io.loraspark.prep;
