// Every resource type keel knows, by the key used in role.yaml.
import type { ResourceType } from './types.js';
import { fileType } from './file.js';
import { packageType } from './package.js';
import { directoryType } from './directory.js';
import { symlinkType } from './symlink.js';
import { lineType } from './line.js';
import { userType } from './user.js';
import { groupType } from './group.js';
import { serviceType } from './service.js';
import { commandType } from './command.js';
import { gitType } from './git.js';
import { aptRepositoryType } from './apt-repository.js';

export const resourceTypes: ReadonlyMap<string, ResourceType<any>> = new Map(
  [fileType, packageType, directoryType, symlinkType, lineType, userType, groupType, serviceType, commandType, gitType, aptRepositoryType].map((t) => [
    t.name,
    t,
  ]),
);
