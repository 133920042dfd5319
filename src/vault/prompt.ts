// Questions on the terminal: prompts go to stderr, answers come from the TTY on stdin.
import type { Prompt } from './keys.js';
import { KeelError } from '../errors.js';

export const ttyPrompt: Prompt = (question, { hidden }) =>
  new Promise((resolve, reject) => {
    const stdin = process.stdin;
    if (!stdin.isTTY) {
      reject(new KeelError('cannot ask: stdin is not a terminal'));
      return;
    }
    process.stderr.write(question);
    const wasRaw = stdin.isRaw;
    stdin.setRawMode(true);
    stdin.resume();
    let answer = '';
    const done = (err?: Error) => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(wasRaw);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(answer);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new KeelError('interrupted'));
        if (ch === '\u0004') return answer ? done() : done(new KeelError('no answer (end of input)'));
        if (ch === '\u007f' || ch === '\b') {
          if (answer) {
            answer = [...answer].slice(0, -1).join('');
            if (!hidden) process.stderr.write('\b \b');
          }
          continue;
        }
        answer += ch;
        if (!hidden) process.stderr.write(ch);
      }
    };
    stdin.on('data', onData);
  });
