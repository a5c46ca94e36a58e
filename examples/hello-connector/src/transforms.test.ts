import { runPredicate, runTransformation } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { Greet, HasName } from './transforms.ts';

describe('Greet and HasName', () => {
  it('greet the name field, with the default or a configured greeting', () => {
    const [plain, custom] = [
      runTransformation(Greet, { field: 'name' }, [{ value: { name: 'Ada' } }])[0],
      runTransformation(Greet, { field: 'name', greeting: 'Bonjour' }, [{ value: { name: 'Ada' } }])[0],
    ];
    expect(plain?.value).toEqual({ name: 'Hello, Ada' });
    expect(custom?.value).toEqual({ name: 'Bonjour Ada' });
    expect(() => runTransformation(Greet, { field: 'name' }, [{ value: 'text' }])).toThrow(/object value/);
  });

  it('HasName holds for a value with a non-empty name only', () => {
    expect(runPredicate(HasName, {}, [{ value: { name: 'Ada' } }, { value: { name: '' } }, { value: null }])).toEqual([true, false, false]);
  });
});
