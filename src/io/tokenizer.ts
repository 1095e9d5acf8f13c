// Tokenizers through transformers.js, built straight from a folder's tokenizer.json and
// tokenizer_config.json (the same class choice AutoTokenizer makes, without its network path).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { checkedFile, readJson } from './files';

export interface Tokenizer {
  /** Token ids of `text`; special tokens (BOS) are added as the tokenizer's post-processor says. */
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** One display string per id (for colouring text token by token). */
  tokenStrings(ids: number[]): string[];
  vocabSize: number;
  bosTokenId?: number;
  eosTokenId?: number;
  /** sha256 of tokenizer.json: identifies the tokenizer in mem files. */
  hash: string;
}

export class TokenizerError extends Error {
  constructor(msg: string) {
    super(msg);
    this.name = 'TokenizerError';
  }
}

export function loadTokenizer(dir: string): Tokenizer {
  const file = path.join(dir, 'tokenizer.json');
  if (!fs.existsSync(file))
    throw new TokenizerError(`${dir}: no tokenizer.json (cramlab needs the fast-tokenizer file)`);
  const json: any = readJson(checkedFile(dir, file), 'tokenizer.json'); // checked: a bounded regular file
  const raw = fs.readFileSync(file, 'utf8'); // the hash is of the file's bytes, as mem files store it
  const cfgFile = path.join(dir, 'tokenizer_config.json');
  const config: any = fs.existsSync(cfgFile) ? readJson(checkedFile(dir, cfgFile), 'tokenizer_config.json') : {};
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const tfjs = require('@huggingface/transformers');
  const className = String(config.tokenizer_class ?? 'PreTrainedTokenizer').replace(/Fast$/, '');
  const Cls = tfjs[className] ?? tfjs.PreTrainedTokenizer;
  const tok = new Cls(json, config);
  const vocabSize: number = Math.max(
    tok.model.vocab?.length ?? 0,
    ...(json.added_tokens ?? []).map((t: any) => t.id + 1),
    tok.model.tokens_to_ids?.size ?? 0,
  );
  const bos = tok.bos_token_id ?? undefined;
  const eos = tok.eos_token_id ?? undefined;
  return {
    encode: (text, opts = {}) =>
      Array.from(tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }) as number[]),
    decode: (ids, opts = {}) => tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? true }),
    tokenStrings: (ids) => {
      // Decode growing prefixes so multi-byte characters and leading-space rules come out as a reader sees them.
      const out: string[] = [];
      let prev = '';
      for (let i = 0; i < ids.length; i++) {
        const cur = tok.decode(ids.slice(0, i + 1), { skip_special_tokens: false });
        out.push(cur.startsWith(prev) ? cur.slice(prev.length) : tok.decode([ids[i]], { skip_special_tokens: false }));
        prev = cur;
      }
      return out;
    },
    vocabSize,
    bosTokenId: bos,
    eosTokenId: eos,
    hash: createHash('sha256').update(raw).digest('hex'),
  };
}

/** Token cap for models without a position limit (recurrent ones): beyond it nothing is plausible. */
export const MAX_TOKENS_NO_CONTEXT = 1_000_000;

/**
 * Encode `text`, refusing one of more than `maxTokens` tokens without tokenizing all of a huge text:
 * a prefix of 8 characters per allowed token is tokenized first, and a text whose prefix is already
 * too long is refused from it (tokens are rarely longer than 8 characters, and then the whole is checked).
 */
export function encodeWithin(tokenizer: Tokenizer, text: string, maxTokens: number, what = 'the text'): number[] {
  const cap = Number.isFinite(maxTokens) ? maxTokens : MAX_TOKENS_NO_CONTEXT;
  if (cap < 2)
    throw new TokenizerError(
      `${what}: the model's context leaves room for ${Math.max(0, cap)} text tokens beside the [mem] vectors (fewer --mem)`,
    );
  const prefixChars = 8 * (cap + 1);
  const tooLong = (n: string) =>
    new TokenizerError(`${what} is ${n} tokens, more than the model's limit of ${cap}: give a shorter text`);
  if (text.length > prefixChars) {
    const head = tokenizer.encode(text.slice(0, prefixChars));
    if (head.length > cap) throw tooLong(`${text.length} characters, over ${cap}`);
  }
  const ids = tokenizer.encode(text);
  if (ids.length > cap) throw tooLong(String(ids.length));
  return ids;
}
