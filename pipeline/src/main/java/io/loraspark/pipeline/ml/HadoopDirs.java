package io.loraspark.pipeline.ml;

import io.loraspark.train.io.AtomicFiles;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.function.Consumer;
import java.util.function.Function;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * Local directories written to, and read from, any Hadoop file system URI, as Spark ML's own save
 * paths are: the engine writes and reads PEFT adapters through {@code java.nio}, so they are staged
 * in a local temporary directory and copied with the {@link FileSystem} of the URI ({@code file:},
 * {@code hdfs:}, {@code s3a:}). A path without a scheme is resolved as Spark resolves it (the
 * default file system).
 */
final class HadoopDirs {
  private HadoopDirs() {}

  /**
   * Fills a fresh local directory with {@code writer}, then copies it to {@code uri}.
   *
   * @throws IllegalArgumentException when {@code uri} exists and is not an empty directory
   * @throws UncheckedIOException naming the URI when the copy fails
   */
  static void write(String uri, Configuration conf, Consumer<java.nio.file.Path> writer) {
    Path dst = new Path(uri);
    java.nio.file.Path tmp = tempDir();
    try {
      FileSystem fs = dst.getFileSystem(conf);
      if (fs.exists(dst)) {
        FileStatus[] inside = fs.getFileStatus(dst).isDirectory() ? fs.listStatus(dst) : null;
        if (inside == null || inside.length > 0) {
          throw new IllegalArgumentException(
              uri + " already exists; choose a new path or delete it first");
        }
        fs.delete(dst, false);
      }
      java.nio.file.Path local = tmp.resolve("dir");
      writer.accept(local);
      fs.copyFromLocalFile(false, true, new Path(local.toUri()), dst);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + uri + ": " + e.getMessage(), e);
    } finally {
      delete(tmp);
    }
  }

  /**
   * Copies the directory at {@code uri} to a local temporary directory and applies {@code reader}.
   *
   * @throws IllegalArgumentException naming the URI when it does not exist
   * @throws UncheckedIOException naming the URI when the copy fails
   */
  static <T> T read(String uri, Configuration conf, Function<java.nio.file.Path, T> reader) {
    Path src = new Path(uri);
    java.nio.file.Path tmp = tempDir();
    try {
      FileSystem fs = src.getFileSystem(conf);
      if (!fs.exists(src)) {
        throw new IllegalArgumentException(uri + " does not exist");
      }
      java.nio.file.Path local = tmp.resolve("dir");
      fs.copyToLocalFile(false, src, new Path(local.toUri()), true);
      return reader.apply(local);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + uri + ": " + e.getMessage(), e);
    } finally {
      delete(tmp);
    }
  }

  private static java.nio.file.Path tempDir() {
    try {
      return Files.createTempDirectory("lora-spark-ml-");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot create a temporary directory: " + e.getMessage(), e);
    }
  }

  private static void delete(java.nio.file.Path tmp) {
    try {
      AtomicFiles.deleteTree(tmp);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + tmp + ": " + e.getMessage(), e);
    }
  }
}
