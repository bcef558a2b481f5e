package io.loraspark.train.lora;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

/**
 * The frozen parent a child adapter trains on: where it is (a local path or a Hadoop URI) and the
 * hash of its content, so that a checkpoint, a round journal and a saved child are tied to the
 * parent's bytes, not only to its name.
 *
 * <p>The content hash is the SHA-256 of, for each of {@link #HASHED_FILES} present in the directory
 * in that order, the file's name, a NUL, its length as 8 bytes and its bytes. {@link
 * AdapterChain#FILE} is one of them, so a parent's hash covers its own parent's hash and the whole
 * chain above it.
 *
 * @param location the parent adapter directory: an absolute local path or a URI
 * @param contentHash 64 lowercase hex digits
 */
public record AdapterParent(String location, String contentHash) implements java.io.Serializable {
  /** The files of an adapter directory its content hash covers, in hashing order. */
  public static final List<String> HASHED_FILES =
      List.of(
          PeftAdapter.CONFIG_FILE,
          PeftAdapter.WEIGHTS_FILE,
          PeftAdapter.PROVENANCE_FILE,
          AdapterChain.FILE);

  /** A location with a scheme ({@code hdfs:/…}); anything else is a local path. */
  private static final String URI_FORM = "^[A-Za-z][A-Za-z0-9+.-]*:/.*";

  public AdapterParent {
    if (location == null || location.isBlank()) {
      throw new IllegalArgumentException("parent must name an adapter directory (path or URI)");
    }
    if (contentHash == null || !contentHash.matches("[0-9a-f]{64}")) {
      throw new IllegalArgumentException(
          "parent " + location + ": content hash must be 64 hex digits but was " + contentHash);
    }
  }

  /**
   * The parent at {@code location} with the hash of its current content; a local path is made
   * absolute, so a child's record does not depend on the directory it is read from.
   *
   * @param location a local path or a Hadoop URI ({@code hdfs:}, {@code s3a:}, {@code file:})
   * @throws IllegalArgumentException naming the location when it is not an adapter directory
   * @throws UncheckedIOException naming the location when it cannot be read
   */
  public static AdapterParent of(String location) {
    if (location == null || location.isBlank()) {
      throw new IllegalArgumentException("parent must name an adapter directory (path or URI)");
    }
    String where =
        location.matches(URI_FORM)
            ? location
            : java.nio.file.Path.of(location).toAbsolutePath().normalize().toString();
    return new AdapterParent(where, contentHash(where));
  }

  /**
   * The content hash of the adapter directory at {@code location} (see the class comment).
   *
   * @throws IllegalArgumentException naming the location when it lacks {@code adapter_config.json}
   *     or {@code adapter_model.safetensors}
   */
  public static String contentHash(String location) {
    Path dir = new Path(location);
    try {
      FileSystem fs = dir.getFileSystem(new Configuration());
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      byte[] buf = new byte[1 << 16];
      for (String name : HASHED_FILES) {
        Path file = new Path(dir, name);
        long length;
        try {
          length = fs.getFileStatus(file).getLen();
        } catch (FileNotFoundException e) {
          if (name.equals(PeftAdapter.CONFIG_FILE) || name.equals(PeftAdapter.WEIGHTS_FILE)) {
            throw new IllegalArgumentException(
                "parent "
                    + location
                    + " has no "
                    + name
                    + "; a parent is a PEFT adapter directory with "
                    + PeftAdapter.CONFIG_FILE
                    + " and "
                    + PeftAdapter.WEIGHTS_FILE,
                e);
          }
          continue;
        }
        sha.update((name + "\0").getBytes(java.nio.charset.StandardCharsets.UTF_8));
        sha.update(java.nio.ByteBuffer.allocate(8).putLong(length).array());
        try (InputStream in = fs.open(file)) {
          for (int n; (n = in.read(buf)) > 0; ) {
            sha.update(buf, 0, n);
          }
        }
      }
      return HexFormat.of().formatHex(sha.digest());
    } catch (IOException e) {
      throw new UncheckedIOException("parent " + location + ": cannot read it: " + e, e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("the JVM has no SHA-256", e);
    }
  }

  /**
   * The parent's local directory: {@link #location} as a plain path or a {@code file:} URI.
   *
   * @throws IllegalArgumentException naming the location when it is a URI of another scheme, which
   *     the engine does not read in place
   */
  public java.nio.file.Path localDir() {
    if (location.startsWith("file:")) {
      return java.nio.file.Path.of(java.net.URI.create(location));
    }
    if (location.matches(URI_FORM)) {
      throw new IllegalArgumentException(
          "parent "
              + location
              + ": parent adapters are read from local paths or file: URIs; copy it to a local or"
              + " shared directory first");
    }
    return java.nio.file.Path.of(location);
  }

  /** The first 12 hex digits of the content hash, for messages. */
  public String shortHash() {
    return contentHash.substring(0, 12);
  }
}
