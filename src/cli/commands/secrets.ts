// `keel secrets ...`: the encrypted vault of each environment (secrets/<env>.age).
// Commands return exit codes; everything printed goes through ctx.out. Only `view` and `get`
// print values, so they are the ones that do not register them with the redactor.
import { Command, Option } from 'commander';
import { ConfigError } from '../../errors.js';
import type { CliContext } from '../context.js';
import type { Runner } from '../context.js';
import type { AtomicFs } from '../../vault/atomic.js';
import { parsePath, valueToText } from '../../vault/document.js';
import type { Prompt } from '../../vault/keys.js';
import { sweepStalePlaintext } from '../../vault/plaintext-dir.js';
import { ttyPrompt } from '../../vault/prompt.js';

/** The vault code (and age-encryption), loaded when a secrets command runs, not at start-up. */
const vaultApi = () => import('../../vault/api.js');
type VaultApi = Awaited<ReturnType<typeof vaultApi>>;

/** What the commands take from the outside world; tests replace parts of it. */
export interface SecretsIo {
  vars: Record<string, string | undefined>;
  home?: string;
  prompt: Prompt;
  /** All of stdin, for `set` when stdin is not a terminal. */
  readStdin: () => Promise<string>;
  stdinIsTTY: () => boolean;
  fs?: AtomicFs;
  tempBase?: string;
  logN?: number;
  /** Where unlocked keys live (tests); default: the per-user tmpfs directory. */
  keyCacheDir?: string | null;
}

const defaultIo = (): SecretsIo => ({
  vars: process.env,
  prompt: ttyPrompt,
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
  stdinIsTTY: () => Boolean(process.stdin.isTTY),
});

const PATH_HELP = 'a key name; dotted paths (db.password) reach into nested mappings';

export function registerSecretsCommands(program: Command, ctx: CliContext, run: Runner, io: Partial<SecretsIo> = {}): void {
  const sio: SecretsIo = { ...defaultIo(), ...io };
  const vc = (vault: VaultApi, env: string) =>
    vault.vaultContext(ctx.root, env, {
      interactive: ctx.interactive,
      vars: sio.vars,
      home: sio.home,
      prompt: sio.prompt,
      fs: sio.fs,
      logN: sio.logN,
      keyCacheDir: sio.keyCacheDir,
      notice: (m) => ctx.out.warn(m),
    });
  const redact = (data: Record<string, unknown>) => ctx.out.redactor.add([data]);

  const secrets = program
    .command('secrets')
    .description('the encrypted secrets of each environment (secrets/<env>.age, an age file holding YAML)')
    .addHelpText(
      'after',
      `
Keys: a passphrase ($KEEL_VAULT_PASSWORD, secrets/<env>.password, or a prompt on a terminal),
or age identities ($KEEL_AGE_IDENTITY, $KEEL_AGE_IDENTITY_FILE, ~/.config/keel/age/<env>.key,
secrets/<env>.key) when secrets/<env>.recipients lists age public keys.
Only 'view' and 'get' show values in clear; everything else keel prints masks them.
'unlock' keeps a passphrase vault's file key for a while (docs/vault.md), like ssh-agent.`,
    )
    // A `keel secrets edit` killed by SIGKILL cannot wipe its plaintext; the next command does.
    .hook('preAction', () => {
      for (const m of sweepStalePlaintext(sio.tempBase)) ctx.out.warn(m);
    });

  secrets
    .command('init')
    .description('create an empty vault for <env> (never overwrites)')
    .argument('<env>')
    .addOption(
      new Option('--recipient <age1...>', 'encrypt to this age public key (repeatable); writes secrets/<env>.recipients').argParser(collect).default([]),
    )
    .action(
      run(async (env: string, opts: { recipient: string[] }) => {
        const vault = await vaultApi();
        ctx.out.line(await vault.initVault(vc(vault, env), opts.recipient));
        return 0;
      }),
    );

  secrets
    .command('edit')
    .description('decrypt <env> into a private temp file, open $EDITOR, validate, re-encrypt')
    .argument('<env>')
    .action(
      run(async (env: string) => {
        const vault = await vaultApi();
        const v = vc(vault, env);
        const { changed } = await vault.editVault(v, {
          editor: sio.vars.EDITOR,
          tempBase: sio.tempBase,
          onSecrets: redact,
          askReopen: async (problem) => {
            ctx.out.warn(`error: ${problem}`);
            const a = await sio.prompt('Reopen the editor to fix it? [Y/n] ', { hidden: false });
            return !/^n/i.test(a.trim());
          },
        });
        ctx.out.line(changed ? `saved ${v.paths.display}` : `no changes; ${v.paths.display} left as it was`);
        return 0;
      }),
    );

  secrets
    .command('view')
    .description('print the decrypted YAML of <env> IN CLEAR (the one command besides get that shows secret values)')
    .argument('<env>')
    .action(
      run(async (env: string) => {
        const vault = await vaultApi();
        ctx.out.line((await vault.viewVault(vc(vault, env))).replace(/\n$/, ''));
        return 0;
      }),
    );

  secrets
    .command('get')
    .description('print one secret value IN CLEAR')
    .argument('<env>')
    .argument('<key>', PATH_HELP)
    .action(
      run(async (env: string, key: string) => {
        const vault = await vaultApi();
        ctx.out.line(valueToText(await vault.getSecret(vc(vault, env), key)));
        return 0;
      }),
    );

  secrets
    .command('set')
    .description('set a secret to the value read from stdin (never from the command line); one trailing newline is dropped')
    .argument('<env>')
    .argument('<key>', PATH_HELP)
    .action(
      run(async (env: string, key: string) => {
        const vault = await vaultApi();
        const v = vc(vault, env);
        parsePath(key); // a bad name fails before anything is read or decrypted
        let value: string;
        if (sio.stdinIsTTY()) {
          value = await sio.prompt(`Value for ${key}: `, { hidden: true });
        } else {
          value = (await sio.readStdin()).replace(/\r?\n$/, '');
        }
        ctx.out.redactor.add([value]);
        const { changed, data } = await vault.setSecret(v, key, value);
        redact(data);
        ctx.out.line(changed ? `set ${key} in ${v.paths.display}` : `${key} already had that value; ${v.paths.display} unchanged`);
        return 0;
      }),
    );

  secrets
    .command('unlock')
    .description('keep the file key of a passphrase vault for a while (tmpfs, this user only): reading it needs no passphrase until then')
    .argument('<env>')
    .option('--for <duration>', 'how long: 90s, 15m, 2h, 1h30m (at most 24h)', '15m')
    .action(
      run(async (env: string, opts: { for: string }) => {
        const vault = await vaultApi();
        const ms = vault.parseDuration(opts.for); // a bad duration fails before the passphrase is asked
        ctx.out.line(await vault.unlockVault(vc(vault, env), ms));
        return 0;
      }),
    );

  secrets
    .command('lock')
    .description('forget the unlocked key of <env> now (--all: of every vault)')
    .argument('[env]')
    .option('--all', 'forget every key keel keeps for you')
    .action(
      run(async (env: string | undefined, opts: { all?: boolean }) => {
        const vault = await vaultApi();
        if (Boolean(opts.all) === Boolean(env)) throw new ConfigError('give either an environment or --all: keel secrets lock <env> | --all');
        if (env) ctx.out.line(vault.lockVault(vc(vault, env)));
        else ctx.out.line(vault.lockAll(sio.keyCacheDir === undefined ? vault.keyCacheDir(sio.vars) : sio.keyCacheDir));
        return 0;
      }),
    );

  secrets
    .command('status')
    .description('what <env> is encrypted to, and whether it is unlocked (until when)')
    .argument('<env>')
    .action(
      run(async (env: string) => {
        const vault = await vaultApi();
        ctx.out.line(vault.vaultStatus(vc(vault, env)));
        return 0;
      }),
    );

  secrets
    .command('rekey')
    .description('re-encrypt <env>: to secrets/<env>.recipients if it exists, else to a new passphrase ($KEEL_VAULT_NEW_PASSWORD or asked)')
    .argument('<env>')
    .action(
      run(async (env: string) => {
        const vault = await vaultApi();
        ctx.out.line(await vault.rekeyVault(vc(vault, env)));
        return 0;
      }),
    );

  const recipients = secrets.command('recipients').description('change who can decrypt <env> (secrets/<env>.recipients), then rekey');
  recipients
    .command('add')
    .argument('<env>')
    .argument('<recipient>', 'an age public key (age1...)')
    .option('--comment <text>', 'who this key belongs to, written after it as # comment')
    .action(
      run(async (env: string, key: string, opts: { comment?: string }) => {
        const vault = await vaultApi();
        const r = await vault.recipientsChange(vc(vault, env), 'add', key, opts.comment);
        for (const w of r.warnings) ctx.out.warn(`warning: ${w}`);
        ctx.out.line(r.message);
        return 0;
      }),
    );
  recipients
    .command('rm')
    .argument('<env>')
    .argument('<recipient>', 'an age public key (age1...)')
    .action(
      run(async (env: string, key: string) => {
        const vault = await vaultApi();
        const r = await vault.recipientsChange(vc(vault, env), 'rm', key);
        for (const w of r.warnings) ctx.out.warn(`warning: ${w}`);
        ctx.out.line(r.message);
        return 0;
      }),
    );

  secrets
    .command('import-ansible')
    .description(
      'decrypt an Ansible Vault file (1.1 or 1.2, AES256; encrypted whole, or a YAML vars file with !vault values) and store it as the vault of <env>',
    )
    .argument('<env>')
    .argument('<file>')
    .option('--ansible-password-file <file>', 'the Ansible Vault password (else asked on a terminal)')
    .option('--force', 'replace an existing secrets/<env>.age')
    .action(
      run(async (env: string, file: string, opts: { ansiblePasswordFile?: string; force?: boolean }) => {
        const vault = await vaultApi();
        let password: Buffer;
        if (opts.ansiblePasswordFile) password = vault.readAnsiblePasswordFile(opts.ansiblePasswordFile);
        else if (ctx.interactive) password = Buffer.from(await sio.prompt(`Ansible Vault password for ${file}: `, { hidden: true }), 'utf8');
        else throw new ConfigError('no Ansible Vault password: pass --ansible-password-file, or run on a terminal to be asked');
        try {
          const r = await vault.importAnsible(vc(vault, env), file, password, Boolean(opts.force));
          redact(r.data);
          ctx.out.line(r.message);
        } finally {
          password.fill(0);
        }
        return 0;
      }),
    );

  secrets
    .command('diff')
    .description('print a vault with values masked, for git diff: git config diff.keelvault.textconv "keel secrets diff"')
    .argument('<file>', 'an age file: secrets/<env>.age, or the temporary copy git passes')
    .option('--env <env>', 'whose keys to use (default: from the file name)')
    .action(
      run(async (file: string, opts: { env?: string }) => {
        const vault = await vaultApi();
        const r = await vault.diffText(ctx.root, file, {
          env: opts.env,
          interactive: ctx.interactive,
          vars: sio.vars,
          home: sio.home,
          prompt: sio.prompt,
          keyCacheDir: sio.keyCacheDir,
          notice: (m) => ctx.out.warn(m),
        });
        redact(r.data);
        ctx.out.line(r.text);
        return 0;
      }),
    );
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
