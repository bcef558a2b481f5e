package io.loraspark.prep.template;

/**
 * A piece of a rendered example: text that is or is not scored, or the tokenizer's EOS token.
 * Concatenated in order, the text pieces are the example's text.
 */
public sealed interface Piece permits Piece.Text, Piece.Eos {

  /** Whether the tokens of this piece are scored (get labels). */
  boolean trainable();

  /**
   * Text to tokenize.
   *
   * @param text the text
   * @param trainable whether its tokens are scored
   */
  record Text(String text, boolean trainable) implements Piece {}

  /** The EOS token id, inserted as a token (not as text), always scored. */
  record Eos() implements Piece {
    @Override
    public boolean trainable() {
      return true;
    }
  }
}
