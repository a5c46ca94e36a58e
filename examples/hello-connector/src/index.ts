export { HelloSink, greetingsOf, helloConfig, SIGNATURE_HEADER, type HelloConfig } from './hello-sink.ts';
