/** createOptimizer(spec): `{ type: 'sgd', lr, momentum, nesterov, weightDecay }` or `{ type: 'novograd', lr, ... }`. */
import { typeError } from '../native/errors';
import { NovoGrad, NovoGradOptions } from './novograd';
import type { Optimizer } from './optimizer';
import { Sgd, SgdOptions } from './sgd';

export type OptimizerSpec = ({ type: 'sgd' } & SgdOptions) | ({ type: 'novograd' } & NovoGradOptions);

export function createOptimizer(spec: OptimizerSpec): Optimizer {
  if (spec === null || typeof spec !== 'object') throw typeError('spec', 'an optimizer spec object', spec);
  const { type, ...rest } = spec;
  if (type === 'sgd') return new Sgd(rest as SgdOptions);
  if (type === 'novograd') return new NovoGrad(rest as NovoGradOptions);
  throw typeError('spec.type', "'sgd' or 'novograd'", type);
}
