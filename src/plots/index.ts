// Figures for the workbook and figures/: builders (charts, tokens), renderers (display), tables.
export * from './figure';
export * from './fit';
export * from './charts';
export * from './tokens';
export * from './exactness';
export * from './display';
export * from './table';
export * from './render';
export * from './search';
