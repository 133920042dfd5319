// What the commands that operate a live app (exec, logs, status, ssh, history) start from: the
// run's pipeline for the whole environment (their own --limit picks hosts afterwards, so a
// limit without the migrate host is no error), the deploy settings when hosts have role
// deploy, the secrets the deploy knows of masked, and connections to the hosts.
import { ConfigError } from '../errors.js';
import type { PreparedRun } from '../engine/pipeline.js';
import type { HostPlan } from '../engine/plan.js';
import { deployConfig, type DeployConfig } from '../deploy/config.js';
import { parseDatabaseUrl } from '../deploy/database.js';
import { linkConnector } from '../ops/hosts.js';
import type { HostLink } from '../ssh/link.js';
import type { CliContext } from './context.js';
import type { HostOptions } from './options.js';
import { prepareFromOptions } from './prepare.js';

export interface OpsPrepared {
  prepared: PreparedRun;
  /** Undefined when no host has role deploy. */
  config: DeployConfig | undefined;
  link: (plan: HostPlan) => Promise<HostLink>;
  mask: (s: string) => string;
}

export async function prepareOps(ctx: CliContext, env: string, o: HostOptions): Promise<OpsPrepared> {
  const prepared = await prepareFromOptions(ctx, env, { ...o, limit: undefined });
  const config = prepared.plans.some((p) => p.host.roles.includes('deploy')) ? deployConfig(prepared.plans, prepared.inventory.file) : undefined;
  if (config?.databaseUrl) {
    try {
      const pw = parseDatabaseUrl(config.databaseUrl).password;
      if (pw) ctx.out.redactor.add([pw, encodeURIComponent(pw)]);
    } catch {
      // not a URL keel reads: masked whole, as a vault value
    }
  }
  if (config?.deployKey) ctx.out.redactor.add([config.deployKey.trim()]);
  let askedPassword: string | undefined;
  if (o.askBecomePass) {
    if (!ctx.interactive) throw new ConfigError('--ask-become-pass needs a terminal; put become_password in the vault instead');
    const { ttyPrompt } = await import('../vault/prompt.js');
    askedPassword = await ttyPrompt('sudo password: ', { hidden: true });
    ctx.out.redactor.add([askedPassword]);
  }
  const link = linkConnector(prepared, { acceptNewHostKeys: o.acceptNewHostKeys, onNewHostKey: (m) => ctx.out.warn(m), askedPassword });
  return { prepared, config, link, mask: (s) => ctx.out.redactor.mask(s) };
}

/** The deploy settings, or a ConfigError saying that `command` needs role deploy. */
export function needDeploy(p: OpsPrepared, command: string): DeployConfig {
  if (p.config) return p.config;
  throw new ConfigError(`keel ${command} works in the live release, and no host of ${p.prepared.inventory.env} has the role "deploy"`, {
    file: p.prepared.inventory.file,
  });
}
