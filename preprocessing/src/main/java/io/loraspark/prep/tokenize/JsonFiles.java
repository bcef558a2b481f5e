package io.loraspark.prep.tokenize;

import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Reads the small JSON files of a model directory, failing with one-line messages. */
final class JsonFiles {

  /** Shared, thread-safe mapper; trailing content after the root value is an error. */
  static final ObjectMapper MAPPER =
      new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

  private JsonFiles() {}

  /**
   * Returns the bytes of {@code file}.
   *
   * @param expected what the file should be, used in the message when it is missing
   * @throws IllegalArgumentException if the file is missing, a directory or unreadable
   */
  static byte[] readBytes(Path file, String expected) {
    if (Files.isDirectory(file)) {
      throw new IllegalArgumentException(file + " is a directory; expected " + expected);
    }
    try {
      return Files.readAllBytes(file);
    } catch (NoSuchFileException e) {
      throw new IllegalArgumentException(file + " is missing; expected " + expected, e);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          file + " cannot be read (" + oneLine(String.valueOf(e.getMessage())) + ")", e);
    }
  }

  /**
   * Parses {@code bytes} (the content of {@code file}) as a JSON object.
   *
   * @throws IllegalArgumentException if the content is not JSON or its root is not an object
   */
  static JsonNode parseObject(byte[] bytes, Path file) {
    JsonNode root;
    try {
      root = MAPPER.readTree(bytes);
    } catch (JsonProcessingException e) {
      JsonLocation at = e.getLocation();
      String where =
          at == null ? "" : " at line " + at.getLineNr() + ", column " + at.getColumnNr();
      throw new IllegalArgumentException(
          file + " is not valid JSON" + where + ": " + oneLine(e.getOriginalMessage()), e);
    } catch (IOException e) {
      throw new IllegalArgumentException(
          file + " cannot be parsed (" + oneLine(String.valueOf(e.getMessage())) + ")", e);
    }
    if (root == null || !root.isObject()) {
      String found = root == null || root.isMissingNode() ? "nothing" : root.getNodeType().name();
      throw new IllegalArgumentException(
          file + " must hold a JSON object {...} but holds " + found.toLowerCase());
    }
    return root;
  }

  /** Reads and parses {@code file} as a JSON object; see {@link #parseObject}. */
  static JsonNode readObject(Path file, String expected) {
    return parseObject(readBytes(file, expected), file);
  }

  /** Collapses line breaks and their surrounding blanks so a message stays on one line. */
  static String oneLine(String message) {
    return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ");
  }
}
