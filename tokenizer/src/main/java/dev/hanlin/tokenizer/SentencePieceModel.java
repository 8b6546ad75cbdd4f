package dev.hanlin.tokenizer;

import dev.hanlin.tokenizer.Protobuf.Field;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A SentencePiece {@code ModelProto} ({@code tokenizer.model}): the pieces with their scores and
 * types, and the trainer and normalizer settings that change how text is encoded. Fields Hanlin
 * does not interpret are kept as read, so {@link #withPieces} writes back everything else
 * unchanged.
 *
 * <p>{@link #read} and {@link #parse} throw {@link TokenizerFormatException} on malformed input,
 * and no other exception, naming the file and byte offset: a broken wire format, a field of the
 * wrong wire type, an unknown piece type, a piece without text, a special id outside the
 * vocabulary.
 *
 * @param pieces the vocabulary in id order
 * @param trainer {@code trainer_spec} fields as read
 * @param normalizer {@code normalizer_spec} fields as read
 * @param other the remaining top-level fields (denormalizer spec, ...), self-test data excluded
 */
public record SentencePieceModel(
    List<Piece> pieces, List<Field> trainer, List<Field> normalizer, List<Field> other) {

  /** {@code ModelProto.SentencePiece.Type}. */
  public enum Type {
    NORMAL,
    UNKNOWN,
    CONTROL,
    USER_DEFINED,
    UNUSED,
    BYTE;

    static Type ofProto(Field f, String what) throws TokenizerFormatException {
      return switch ((int) f.bits()) {
        case 1 -> NORMAL;
        case 2 -> UNKNOWN;
        case 3 -> CONTROL;
        case 4 -> USER_DEFINED;
        case 5 -> UNUSED;
        case 6 -> BYTE;
        default ->
            throw TokenizerFormatException.at(what, f.offset(), "unknown piece type " + f.bits());
      };
    }
  }

  /** One vocabulary entry: its text (whitespace as ▁), BPE score (higher merges first), type. */
  public record Piece(String text, float score, Type type) {}

  // Field numbers from sentencepiece_model.proto.
  private static final int MODEL_PIECES = 1, MODEL_TRAINER = 2, MODEL_NORMALIZER = 3;
  private static final int MODEL_SELF_TEST = 4;
  private static final int T_MODEL_TYPE = 3, T_VOCAB_SIZE = 4, T_WS_SUFFIX = 24;
  private static final int T_SPLIT_DIGITS = 25, T_BYTE_FALLBACK = 35;
  private static final int T_UNK_ID = 40, T_BOS_ID = 41, T_EOS_ID = 42, T_PAD_ID = 43;
  private static final int T_UNK_SURFACE = 44;
  private static final int N_NAME = 1, N_CHARSMAP = 2, N_DUMMY_PREFIX = 3, N_EXTRA_WS = 4;
  private static final int N_ESCAPE_WS = 5;

  public SentencePieceModel {
    pieces = List.copyOf(pieces);
    trainer = List.copyOf(trainer);
    normalizer = List.copyOf(normalizer);
    other = List.copyOf(other);
  }

  /** Reads a {@code tokenizer.model} file. */
  public static SentencePieceModel read(Path file) throws IOException {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new IOException("cannot read " + file + ": " + e.getMessage(), e);
    }
    return parse(bytes, file.toString());
  }

  /** Parses a serialized {@code ModelProto}; {@code what} names the source in errors. */
  public static SentencePieceModel parse(byte[] bytes, String what)
      throws TokenizerFormatException {
    List<Piece> pieces = new ArrayList<>();
    List<Field> trainer = List.of();
    List<Field> normalizer = List.of();
    List<Field> other = new ArrayList<>();
    for (Field f : Protobuf.parse(bytes, 0, bytes.length, what)) {
      switch (f.number()) {
        case MODEL_PIECES -> {
          String w = what + ": piece " + pieces.size();
          expect(f, Protobuf.LEN, what + ": pieces");
          String text = null;
          float score = 0;
          Type type = Type.NORMAL;
          for (Field pf : Protobuf.parseNested(f, w)) {
            switch (pf.number()) {
              case 1 -> text = expect(pf, Protobuf.LEN, w + " text").asString();
              case 2 -> score = expect(pf, Protobuf.FIXED32, w + " score").asFloat();
              case 3 -> type = Type.ofProto(expect(pf, Protobuf.VARINT, w + " type"), w);
              default -> {}
            }
          }
          if (text == null || text.isEmpty())
            throw TokenizerFormatException.at(w, f.offset(), "the piece has no text");
          pieces.add(new Piece(text, score, type));
        }
        case MODEL_TRAINER ->
            trainer = checked(f, what + ": trainer_spec", TRAINER_LEN, TRAINER_VARINT);
        case MODEL_NORMALIZER ->
            normalizer = checked(f, what + ": normalizer_spec", NORMALIZER_LEN, NORMALIZER_VARINT);
        case MODEL_SELF_TEST -> {} // self-test samples are only valid for the vocabulary they came
        // with
        default -> other.add(f);
      }
    }
    if (pieces.isEmpty())
      throw TokenizerFormatException.at(what, 0, "no pieces (not a tokenizer.model?)");
    var m = new SentencePieceModel(pieces, trainer, normalizer, other);
    checkId(m, T_UNK_ID, m.unkId(), false, what);
    checkId(m, T_BOS_ID, m.bosId(), true, what);
    checkId(m, T_EOS_ID, m.eosId(), true, what);
    checkId(m, T_PAD_ID, (int) m.trainerLong(T_PAD_ID, -1), true, what);
    return m;
  }

  // The fields this class interprets, by the wire type they must have.
  private static final Set<Integer> TRAINER_LEN = Set.of(T_UNK_SURFACE);
  private static final Set<Integer> TRAINER_VARINT =
      Set.of(
          T_MODEL_TYPE,
          T_VOCAB_SIZE,
          T_WS_SUFFIX,
          T_SPLIT_DIGITS,
          T_BYTE_FALLBACK,
          T_UNK_ID,
          T_BOS_ID,
          T_EOS_ID,
          T_PAD_ID);
  private static final Set<Integer> NORMALIZER_LEN = Set.of(N_NAME, N_CHARSMAP);
  private static final Set<Integer> NORMALIZER_VARINT =
      Set.of(N_DUMMY_PREFIX, N_EXTRA_WS, N_ESCAPE_WS);

  /** A nested message whose interpreted fields have the right wire types. */
  private static List<Field> checked(Field f, String what, Set<Integer> len, Set<Integer> varint)
      throws TokenizerFormatException {
    expect(f, Protobuf.LEN, what);
    List<Field> fields = Protobuf.parseNested(f, what);
    for (Field x : fields) {
      if (len.contains(x.number())) expect(x, Protobuf.LEN, what + " field " + x.number());
      if (varint.contains(x.number())) expect(x, Protobuf.VARINT, what + " field " + x.number());
    }
    return fields;
  }

  private static Field expect(Field f, int wireType, String what) throws TokenizerFormatException {
    if (f.wireType() != wireType) {
      throw TokenizerFormatException.at(
          what, f.offset(), "wire type " + f.wireType() + ", expected " + wireType);
    }
    return f;
  }

  /** A special id from trainer_spec is a piece (or -1 where the id is optional). */
  private static void checkId(
      SentencePieceModel m, int field, int id, boolean optional, String what)
      throws TokenizerFormatException {
    if ((optional && id == -1) || (id >= 0 && id < m.pieces().size())) return;
    long offset = 0;
    for (Field f : m.trainer()) if (f.number() == field) offset = f.offset();
    throw TokenizerFormatException.at(
        what + ": trainer_spec field " + field,
        offset,
        "special id " + id + " is not a piece (" + m.pieces().size() + " pieces)");
  }

  /** A Llama-style model (BPE, byte fallback, dummy prefix, identity normalizer) for pieces. */
  public static SentencePieceModel llamaStyle(
      List<Piece> pieces,
      int unkId,
      int bosId,
      int eosId,
      boolean byteFallback,
      boolean dummyPrefix) {
    List<Field> trainer = new ArrayList<>();
    trainer.add(Field.varint(T_MODEL_TYPE, 2));
    trainer.add(Field.varint(T_VOCAB_SIZE, pieces.size()));
    trainer.add(Field.varint(T_BYTE_FALLBACK, byteFallback ? 1 : 0));
    trainer.add(Field.varint(T_UNK_ID, unkId));
    trainer.add(Field.varint(T_BOS_ID, bosId));
    trainer.add(Field.varint(T_EOS_ID, eosId));
    trainer.add(Field.varint(T_PAD_ID, -1L));
    List<Field> normalizer =
        List.of(
            Field.string(N_NAME, "identity"),
            Field.bytes(N_CHARSMAP, new byte[0]),
            Field.varint(N_DUMMY_PREFIX, dummyPrefix ? 1 : 0),
            Field.varint(N_EXTRA_WS, 0),
            Field.varint(N_ESCAPE_WS, 1));
    return new SentencePieceModel(pieces, trainer, normalizer, List.of());
  }

  /** The same settings with another vocabulary (trainer_spec.vocab_size follows). */
  public SentencePieceModel withPieces(List<Piece> newPieces) {
    List<Field> t = new ArrayList<>();
    boolean seen = false;
    for (Field f : trainer) {
      if (f.number() == T_VOCAB_SIZE) {
        t.add(Field.varint(T_VOCAB_SIZE, newPieces.size()));
        seen = true;
      } else {
        t.add(f);
      }
    }
    if (!seen) t.add(Field.varint(T_VOCAB_SIZE, newPieces.size()));
    return new SentencePieceModel(newPieces, t, normalizer, other);
  }

  /** Serializes as a {@code ModelProto}. */
  public byte[] toBytes() {
    List<Field> top = new ArrayList<>();
    for (Piece p : pieces) {
      top.add(
          Field.bytes(
              MODEL_PIECES,
              Protobuf.write(
                  List.of(
                      Field.string(1, p.text()),
                      Field.fixed32(2, p.score()),
                      Field.varint(3, p.type().ordinal() + 1)))));
    }
    top.add(Field.bytes(MODEL_TRAINER, Protobuf.write(trainer)));
    top.add(Field.bytes(MODEL_NORMALIZER, Protobuf.write(normalizer)));
    top.addAll(other);
    return Protobuf.write(top);
  }

  public void write(Path file) {
    try {
      Files.write(file, toBytes());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  private long trainerLong(int number, long dflt) {
    long v = dflt;
    for (Field f : trainer) if (f.number() == number) v = f.bits();
    return v;
  }

  private Field normalizerField(int number) {
    Field v = null;
    for (Field f : normalizer) if (f.number() == number) v = f;
    return v;
  }

  /** trainer_spec.model_type: 1 unigram, 2 BPE, 3 word, 4 char (proto default: unigram). */
  public int modelType() {
    return (int) trainerLong(T_MODEL_TYPE, 1);
  }

  public boolean byteFallback() {
    return trainerLong(T_BYTE_FALLBACK, 0) != 0;
  }

  public boolean splitDigits() {
    return trainerLong(T_SPLIT_DIGITS, 0) != 0;
  }

  public boolean treatWhitespaceAsSuffix() {
    return trainerLong(T_WS_SUFFIX, 0) != 0;
  }

  public int unkId() {
    return (int) trainerLong(T_UNK_ID, 0);
  }

  public int bosId() {
    return (int) trainerLong(T_BOS_ID, 1);
  }

  public int eosId() {
    return (int) trainerLong(T_EOS_ID, 2);
  }

  /** What decode prints for the unknown piece (proto default " ⁇ "). */
  public String unkSurface() {
    String v = " \u2047 ";
    for (Field f : trainer) if (f.number() == T_UNK_SURFACE) v = f.asString();
    return v;
  }

  public String normalizerName() {
    Field f = normalizerField(N_NAME);
    return f == null ? "" : f.asString();
  }

  public boolean hasCharsMap() {
    Field f = normalizerField(N_CHARSMAP);
    return f != null && f.bytes().length > 0;
  }

  public boolean addDummyPrefix() {
    Field f = normalizerField(N_DUMMY_PREFIX);
    return f == null || f.asBool();
  }

  public boolean removeExtraWhitespaces() {
    Field f = normalizerField(N_EXTRA_WS);
    return f == null || f.asBool();
  }

  public boolean escapeWhitespaces() {
    Field f = normalizerField(N_ESCAPE_WS);
    return f == null || f.asBool();
  }
}
