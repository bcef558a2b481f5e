/** Reading the tokenized Parquet shards written by preprocessing, inside Spark tasks. */
package io.loraspark.train.data;
